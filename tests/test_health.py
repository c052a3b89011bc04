import os
import sqlite3
import threading
from types import SimpleNamespace

import pytest

from flaskr import db as flaskr_db
from flaskr import health
from flaskr.db import get_db


def test_hello(client):
    response = client.get("/hello")
    assert response.data == b"Hello, World!"


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_unreadable_database(make_app, tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    response = make_app(DATABASE=str(garbage)).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    assert response.get_json()["status"] == "unavailable"


@pytest.mark.sqlite_only
def test_healthz_schema_not_upgraded(app, client):
    with app.app_context():
        get_db().execute("PRAGMA user_version = 1")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "init-db" in response.get_json()["reason"]


@pytest.fixture
def clock(monkeypatch):
    """The health check's clock, moved on by the test."""

    class Clock:
        now = 1000.0

        def advance(self, seconds):
            self.now += seconds

    clock = Clock()
    monkeypatch.setattr(health, "monotonic", lambda: clock.now)
    return clock


@pytest.fixture
def probes(monkeypatch):
    """Record each write probe /healthz runs (with its commit flag), running it for real."""
    calls = []
    real_probe = health.write_problem

    def probe(db, min_free_bytes, commit=False):
        calls.append(commit)
        return real_probe(db, min_free_bytes, commit)

    monkeypatch.setattr(health, "write_problem", probe)
    return calls


def read_only_connections(monkeypatch):
    """Make every connection the app opens from now on read-only; return a switch back."""
    real_connect = flaskr_db.connect

    def connect(*args, **kwargs):
        db = real_connect(*args, **kwargs)
        db.execute("PRAGMA query_only = ON")
        return db

    monkeypatch.setattr(flaskr_db, "connect", connect)
    return lambda: monkeypatch.setattr(flaskr_db, "connect", real_connect)


@pytest.mark.sqlite_only
def test_healthz_is_503_while_the_database_cannot_take_a_write(client, clock, monkeypatch):
    writable_again = read_only_connections(monkeypatch)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    assert response.get_json() == {
        "status": "unavailable",
        "reason": "the database cannot take a write: the database is read-only",
    }
    writable_again()
    # The answer stands for a second, then the next check finds the database writable.
    assert client.get("/healthz").status_code == 503
    clock.advance(1)
    assert client.get("/healthz").status_code == 200


def test_healthz_probes_at_most_once_a_second(client, clock, probes):
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
        clock.advance(0.1)
    assert probes == [False]
    clock.advance(0.6)
    assert client.get("/healthz").status_code == 200
    assert probes == [False, False]


@pytest.mark.sqlite_only
def test_routine_probes_commit_nothing(app, client, clock):
    watcher = sqlite3.connect(app.config["DATABASE"])
    (before,) = watcher.execute("PRAGMA data_version").fetchone()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
        clock.advance(1)
    # Another connection's commit would change data_version (and empty page caches).
    assert watcher.execute("PRAGMA data_version").fetchone() == (before,)
    watcher.close()


@pytest.mark.sqlite_only
def test_after_a_fault_probes_commit_until_a_write_succeeds(app, client, auth, clock, probes):
    auth.login()
    holder = sqlite3.connect(app.config["DATABASE"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    app.config["SQLITE_BUSY_TIMEOUT_MS"] = 20
    assert client.post("/1/like").status_code == 503
    assert client.get("/healthz").status_code == 503
    clock.advance(1)
    holder.execute("ROLLBACK")
    holder.close()
    assert client.get("/healthz").status_code == 200
    clock.advance(1)
    assert client.get("/healthz").status_code == 200
    # Only a real write proves a failing disk takes writes again; then routine probes.
    assert probes == [True, True, False]


@pytest.mark.parametrize(
    ("free_blocks", "status"), ((63, 503), (64, 200))
)  # 4 KiB blocks: the default 256 KiB is 64 of them
@pytest.mark.sqlite_only
def test_healthz_is_503_when_the_disk_is_nearly_full(client, monkeypatch, free_blocks, status):
    real_statvfs = os.statvfs

    def statvfs(path):
        disk = real_statvfs(path)
        return SimpleNamespace(f_bavail=free_blocks, f_frsize=4096, f_blocks=disk.f_blocks)

    monkeypatch.setattr(flaskr_db.os, "statvfs", statvfs)
    response = client.get("/healthz")
    assert response.status_code == status
    if status == 503:
        assert response.get_json()["reason"] == (
            "the database cannot take a write:"
            " less than 262,144 bytes are free on the database's disk"
        )


@pytest.mark.sqlite_only
def test_healthz_is_503_when_the_database_reached_its_page_limit(app, client, monkeypatch):
    real_connect = flaskr_db.connect

    def connect(*args, **kwargs):
        db = real_connect(*args, **kwargs)
        db.execute("PRAGMA max_page_count = 1")  # no more pages than it has
        return db

    monkeypatch.setattr(flaskr_db, "connect", connect)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "size limit (max_page_count)" in response.get_json()["reason"]


def test_a_check_in_progress_does_not_hold_up_others(clock):
    check = health.WriteCheck()
    assert check.current_problem(lambda commit: "the disk is full") == "the disk is full"
    clock.advance(1)
    with check.lock:  # another thread is probing
        assert check.current_problem(lambda commit: pytest.fail("probed twice")) == (
            "the disk is full"
        )


def test_the_first_check_waits_for_the_probe_in_progress(clock):
    check = health.WriteCheck()
    probing, finish = threading.Event(), threading.Event()
    calls = []

    def slow_probe(commit):
        calls.append(commit)
        probing.set()
        finish.wait(5)
        return "the database is read-only"

    first = threading.Thread(target=check.current_problem, args=(slow_probe,))
    first.start()
    probing.wait(5)
    threading.Timer(0.05, finish.set).start()
    # No answer exists yet: this one waits for it rather than answering "ok".
    assert check.current_problem(slow_probe) == "the database is read-only"
    first.join()
    assert calls == [False]


class BrokenProbeConnection:
    """A connection on which the probe's first statement is a programming error."""

    def execute(self, sql):
        raise sqlite3.OperationalError('near "BEGIN": syntax error')


def test_a_probe_that_meets_a_bug_raises_it():
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        flaskr_db.write_problem(BrokenProbeConnection(), 0)
