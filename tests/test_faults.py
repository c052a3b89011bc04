"""Faults through the real views: a full database, a read-only one, a disk that fails writes,
a lock held past the busy timeout and a disk that cannot take a spooled export each answer
503 with Retry-After in the site's layout, write nothing half-way, log their cause once, and
heal by themselves once the fault is gone.
"""

import errno
import io
import logging
import os
import resource
import signal
import sqlite3
import threading

import pytest
from images import image_bytes, noise, post_image

from flaskr import account, caching, health
from flaskr import db as flaskr_db

# SQLite's own faults, made real; PostgreSQL's are in test_postgresql.py.
pytestmark = pytest.mark.sqlite_only


def with_image(client):
    """Give post 1 an image, through the update view."""
    data = {"title": "test title", "body": "", "image": (io.BytesIO(image_bytes()), "a.png")}
    assert client.post("/1/update", data=data).status_code == 302


# Each view that writes, with what it sends. Bodies are larger than a database page, so
# that these writes also need new pages (which a full database cannot give).
ACTIONS = {
    "create": lambda c: c.post("/create", data={"title": "new", "body": "x" * 9000, "tags": "t"}),
    "create with image": lambda c: post_image(c, noise()),
    "update": lambda c: c.post("/1/update", data={"title": "edited", "body": "y" * 9000}),
    "replace image": lambda c: c.post(
        "/1/update",
        data={
            "title": "t",
            "body": "",
            "image": (io.BytesIO(image_bytes(color=(0, 0, 0))), "b.png"),
        },
    ),
    "delete": lambda c: c.post("/1/delete"),
    "comment": lambda c: c.post("/1/comment", data={"body": "z" * 5000}),
    "like": lambda c: c.post("/1/like"),
    "login": lambda c: c.post("/auth/login", data={"username": "test", "password": "test"}),
    "register": lambda c: c.post(
        "/auth/register", data={"username": "newcomer", "password": "a fine password"}
    ),
}


class Fault:
    """A way to make the database refuse writes, switched on and off by a test."""

    cause = ""

    def __init__(self, app, monkeypatch):
        self.app = app
        self.monkeypatch = monkeypatch
        self.statements = []
        real_connect = flaskr_db.connect

        def connect(*args, **kwargs):
            db = real_connect(*args, **kwargs)
            for statement in self.statements:
                db.execute(statement)
            return db

        # Every connection the application opens from now on runs self.statements.
        monkeypatch.setattr(flaskr_db, "connect", connect)

    def start(self):
        raise NotImplementedError

    def stop(self):
        self.statements.clear()


class PageLimit(Fault):
    """The database may not grow: a real SQLITE_FULL for any write that needs a new page."""

    cause = "the disk or the database is full"

    def start(self):
        # Free pages (a migration that rebuilds a table leaves some) would take a write
        # without growing the file.
        db = sqlite3.connect(self.app.config["DATABASE"])
        db.execute("VACUUM")
        db.close()
        # max_page_count cannot go below the current size: 1 means "as large as it is".
        self.statements.append("PRAGMA max_page_count = 1")


class ReadOnly(Fault):
    """Every connection is read-only: SQLITE_READONLY, as a 0444 file gives a non-root user."""

    cause = "the database is read-only"

    def start(self):
        self.statements.append("PRAGMA query_only = ON")


class Locked(Fault):
    """Another connection holds the write lock past the busy timeout: SQLITE_BUSY."""

    cause = "another writer held the lock past the busy timeout"

    def start(self):
        self.app.config["SQLITE_BUSY_TIMEOUT_MS"] = 50
        self.holder = sqlite3.connect(self.app.config["DATABASE"], isolation_level=None)
        self.holder.execute("BEGIN IMMEDIATE")

    def stop(self):
        self.holder.execute("ROLLBACK")
        self.holder.close()


class DiskFailsWrites(Fault):
    """The kernel refuses to grow any file (RLIMIT_FSIZE): a real SQLITE_IOERR at COMMIT.

    The limit is the write-ahead log's current size, so SQLite's next append fails while
    the test's own small output files still have room. An open reader keeps the log
    (SQLite deletes it when the last connection closes).
    """

    cause = "a disk I/O error"

    def start(self):
        self.reader = sqlite3.connect(self.app.config["DATABASE"])
        self.reader.execute("SELECT COUNT(*) FROM post").fetchone()
        # Writes to grow the log well past the size of anything else the test writes.
        with self.app.app_context(), flaskr_db.transaction() as db:
            db.execute("CREATE TABLE ballast (data BLOB)")
            db.execute("INSERT INTO ballast VALUES (zeroblob(65536))")
            db.execute("DROP TABLE ballast")
        self.limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        self.handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        size = os.path.getsize(self.app.config["DATABASE"] + "-wal")
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, self.limits[1]))

    def stop(self):
        resource.setrlimit(resource.RLIMIT_FSIZE, self.limits)
        signal.signal(signal.SIGXFSZ, self.handler)
        self.reader.close()


FAULTS = {"page limit": PageLimit, "read-only": ReadOnly, "locked": Locked, "I/O": DiskFailsWrites}
# A full database fails only writes that need a new page; the others fail every write.
CASES = [
    (fault, action)
    for fault in FAULTS
    for action in ACTIONS
    if fault != "page limit" or action in ("create", "create with image", "update", "comment")
]


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


@pytest.mark.parametrize(("fault_name", "action"), CASES)
def test_a_fault_answers_503_writes_nothing_and_heals(
    app, client, auth, caplog, clock, monkeypatch, snapshot, fault_name, action
):
    auth.login()
    if action == "replace image":
        with_image(client)
    before = snapshot()
    fault = FAULTS[fault_name](app, monkeypatch)
    fault.start()
    try:
        with caplog.at_level(logging.INFO, logger="flaskr"):
            response = ACTIONS[action](client)
        during = snapshot()
        health_during = client.get("/healthz")
    finally:
        fault.stop()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    assert response.content_type == "text/html; charset=utf-8"
    assert b'class="site-nav"' in response.data
    assert b"503 Service Unavailable" in response.data
    assert b"The site cannot save anything right now" in response.data
    assert b"Please try again shortly." in response.data
    # Nothing half-written: every table as it was, no new or lost image file.
    assert during == before
    # One line names the cause, without a traceback; the request's own line says 503.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert fault.cause in warnings[0].getMessage()
    assert warnings[0].exc_info is None
    assert any(" 503 " in r.getMessage() for r in caplog.records)

    assert health_during.status_code == 503
    assert health_during.headers["Retry-After"] == "10"
    assert health_during.get_json()["status"] == "unavailable"
    clock.advance(1)
    assert client.get("/healthz").status_code == 200
    # The same request succeeds once the fault is gone, with no restart.
    assert ACTIONS[action](client).status_code == 302
    assert snapshot() != before


def test_a_database_that_cannot_be_opened_is_503_for_readers(make_app, tmp_path):
    app = make_app(DATABASE=str(tmp_path / "missing" / "flaskr.sqlite"))
    response = app.test_client().get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    assert b'class="site-nav"' in response.data
    assert b"The site cannot read its data right now." in response.data


def test_a_lock_released_within_the_busy_timeout_is_waited_for(app, client, auth, count):
    auth.login()
    holder = sqlite3.connect(app.config["DATABASE"], isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.2, holder.execute, ("ROLLBACK",))
    release.start()
    try:
        response = client.post("/create", data={"title": "patient", "body": ""})
    finally:
        release.join()
        holder.close()
    assert response.status_code == 302
    assert count("post") == 2


def test_a_write_after_write_access_returns_repairs_the_journal_modes(
    app, client, auth, clock, monkeypatch
):
    # A 0444 database file makes SQLite create its journal files 0444 too; once the
    # operator gives the database file its mode back, the next fault repairs them.
    auth.login()
    path = app.config["DATABASE"]
    real_access = os.access

    def access(path, mode):  # as the files' owner sees it: root ignores modes
        if mode == os.W_OK and os.path.exists(path):
            return bool(os.stat(path).st_mode & 0o200)
        return real_access(path, mode)

    monkeypatch.setattr(flaskr_db.os, "access", access)
    fault = ReadOnly(app, monkeypatch)
    fault.start()
    reader = sqlite3.connect(path)  # keeps the journal files while requests come and go
    reader.execute("SELECT COUNT(*) FROM post").fetchone()
    for suffix in ("-wal", "-shm"):
        open(f"{path}{suffix}", "ab").close()
        os.chmod(f"{path}{suffix}", 0o444)
    assert ACTIONS["like"](client).status_code == 503
    assert oct(os.stat(f"{path}-shm").st_mode & 0o777) == "0o644"
    os.chmod(f"{path}-shm", 0o444)
    assert client.get("/healthz").status_code == 503
    assert oct(os.stat(f"{path}-shm").st_mode & 0o777) == "0o644"
    fault.stop()
    reader.close()


def test_a_fault_closes_the_page_caches_watch_so_writes_heal(
    app, client, auth, monkeypatch, snapshot
):
    # SQLite shares some of a database's state between the connections of a process: the
    # page cache's watch, opened during a read-only episode, kept every writer read-only
    # until a restart. Here the watch opened during the fault holds the write lock, which
    # keeps writers failing in the same way for as long as it stays open.
    app.config["SQLITE_BUSY_TIMEOUT_MS"] = 50
    faulty = False
    real_open_watch = caching.open_watch

    def open_watch(database):
        watch = real_open_watch(database)
        if faulty:
            watch.execute("BEGIN IMMEDIATE")
        return watch

    monkeypatch.setattr(caching, "open_watch", open_watch)
    visitor = app.test_client()
    auth.login()
    before = snapshot()
    faulty = True
    assert b"0 likes" in visitor.get("/").data  # the visitor's page opens the watch
    response = ACTIONS["like"](client)
    faulty = False

    assert response.status_code == 503
    assert snapshot() == before
    # Once the fault is gone, writes resume with no restart, and the cache works again.
    assert ACTIONS["like"](client).status_code == 302
    assert b"1 like" in visitor.get("/").data
    assert b"1 like" in visitor.get("/").data
    assert app.extensions["page_cache"].watch is not None


def test_a_fault_with_the_page_cache_off_answers_503_and_heals(make_app, app, monkeypatch):
    uncached = make_app(PAGE_CACHE_BYTES=0)
    client = uncached.test_client()
    client.post("/auth/login", data={"username": "test", "password": "test"})
    fault = Locked(uncached, monkeypatch)
    fault.start()
    try:
        response = ACTIONS["like"](client)
    finally:
        fault.stop()
    assert response.status_code == 503
    assert ACTIONS["like"](client).status_code == 302


# A full disk, a used-up quota, a read-only file system, lost permissions, a failing disk:
# each while a user's export is spooled to a temporary file (all else is in the database).
STORAGE_FAULTS = flaskr_db.STORAGE_FAULTS


def failing(code):
    """A function that fails as the file system does, with errno `code`."""

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize("code", sorted(STORAGE_FAULTS), ids=errno.errorcode.get)
def test_a_storage_fault_while_spooling_an_export_answers_503(
    client, auth, caplog, monkeypatch, code
):
    auth.login()
    with monkeypatch.context() as patch:
        patch.setattr(account.tempfile, "TemporaryFile", failing(code))
        with caplog.at_level(logging.INFO, logger="flaskr"):
            response = client.get("/settings/export")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    assert b'class="site-nav"' in response.data
    assert b"The site cannot read its data right now." in response.data
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert STORAGE_FAULTS[code] in warnings[0].getMessage()
    assert warnings[0].exc_info is None
    # Once the disk takes writes again, so does the site.
    with client.get("/settings/export") as response:
        assert response.status_code == 200


def test_another_os_error_while_spooling_an_export_is_a_bug(client, auth, monkeypatch):
    auth.login()
    monkeypatch.setattr(account.tempfile, "TemporaryFile", failing(errno.EBADF))
    with pytest.raises(OSError, match="Bad file descriptor"):
        client.get("/settings/export")
