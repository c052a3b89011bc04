"""PostgreSQL itself: settings, the dialect layer, its faults, many servers on one database.

The rest of the suite already runs on PostgreSQL (see conftest.py); these tests are about
what only this backend has.
"""

import os
import subprocess
import sys
import threading

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from flaskr import create_app, postgres
from flaskr import db as flaskr_db
from flaskr.caching import PageCache
from flaskr.db import fault_cause, get_db, init_db, latest_version, schema_version, transaction
from flaskr.settings import SettingError

pytestmark = pytest.mark.postgresql_only


def current_database(app):
    with app.app_context():
        return get_db().execute("SELECT current_database()").fetchone()[0]


# --- settings ---------------------------------------------------------------------------


def start(env, tmp_path):
    """Start the app factory in a new process with these variables; return (status, stderr)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("FLASKR_") and name != "DATABASE_URL"
    }
    environment |= {"FLASKR_INSTANCE_PATH": str(tmp_path / "instance"), **env}
    result = subprocess.run(
        [sys.executable, "-c", "import flaskr; flaskr.create_app()"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"FLASKR_DATABASE": "mysql://user@host/db"},
            "FLASKR_DATABASE must be a file path or a postgresql:// URL, not a mysql: URL.",
        ),
        (
            {"DATABASE_URL": "mysql://user@host/db"},
            "DATABASE_URL is not a postgresql:// URL: set FLASKR_DATABASE to a file path"
            " or a postgresql:// URL.",
        ),
        ({"FLASKR_DATABASE": ""}, "FLASKR_DATABASE must be a file path or a postgresql:// URL."),
    ],
)
def test_a_database_setting_of_another_kind_stops_the_start_in_one_line(env, message, tmp_path):
    status, stderr = start(env, tmp_path)
    assert status == 1
    assert stderr == message + "\n"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FLASKR_DATABASE", "sqlite:///site.db", "not a sqlite: URL"),
        ("DATABASE_URL", "/srv/site.sqlite", "DATABASE_URL is not a postgresql:// URL"),
        ("FLASKR_DATABASE", "", "FLASKR_DATABASE must be a file path"),
    ],
)
def test_the_setting_at_fault_is_named(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError, match=message):
        create_app()


def test_database_url_is_used_when_flaskr_database_is_not_set(monkeypatch, database):
    monkeypatch.setenv("DATABASE_URL", database)
    assert create_app().config["DATABASE"] == database
    monkeypatch.setenv("FLASKR_DATABASE", "/srv/site.sqlite")
    assert create_app().config["DATABASE"] == "/srv/site.sqlite"


# --- the dialect ------------------------------------------------------------------------


def test_queries_are_translated_once_for_both_backends():
    translate = postgres.translate
    assert translate("SELECT * FROM user WHERE id = ?") == 'SELECT * FROM "user" WHERE id = %s'
    assert (
        translate("SELECT u.user_id FROM user_session u") == "SELECT u.user_id FROM user_session u"
    )
    assert translate("SELECT '?', 'user 100%' WHERE a LIKE 'x%' AND b = ?") == (
        "SELECT '?', 'user 100%%' WHERE a LIKE 'x%%' AND b = %s"
    )
    assert translate("SELECT 'it''s ?' FROM user", placeholders=False) == (
        "SELECT 'it''s ?' FROM \"user\""
    )
    assert translate("BEGIN") == postgres.SNAPSHOT


def test_rows_read_by_name_and_by_position(app):
    with app.app_context():
        db = get_db()
        row = db.execute("SELECT id, username FROM user WHERE id = 1").fetchone()
        assert row["username"] == row[1] == "test"
        assert tuple(row) == (1, "test")
        assert dict(row) == {"id": 1, "username": "test"}
        assert row.keys() == ["id", "username"]
        db.executemany("INSERT INTO tag (name) VALUES (?)", [("a",), ("b",)])
        assert db.execute("SELECT COUNT(*) FROM tag").fetchone()[0] == 2


def test_a_connection_outside_the_pool_commits_and_closes(app, database):
    db = postgres.connect(database)
    db.execute("BEGIN")
    db.execute("INSERT INTO tag (name) VALUES ('kept')")
    assert db.in_transaction
    db.commit()
    assert not db.in_transaction
    db.commit()  # nothing open: nothing to do
    db.close()
    assert db.conn.closed
    with app.app_context():
        assert get_db().execute("SELECT name FROM tag").fetchall() == [("kept",)]


def test_a_forked_worker_makes_its_own_pool(app, monkeypatch):
    pools = app.extensions["postgresql"]
    first = pools.get()
    assert pools.get() is first
    monkeypatch.setattr(os, "getpid", lambda: -1)
    assert pools.get() is not first
    first.close()


# --- faults -----------------------------------------------------------------------------


def test_fault_cause_tells_faults_from_bugs():
    assert "busy" in fault_cause(PoolTimeout("no connection"))
    assert fault_cause(psycopg.errors.DiskFull()) == "the database server's disk is full"
    assert fault_cause(psycopg.errors.AdminShutdown()) == (
        "the database server is shutting down or starting up"
    )
    assert fault_cause(psycopg.errors.ConnectionFailure()) == (
        "the database server cannot be reached"
    )
    assert fault_cause(psycopg.OperationalError("connection refused")) == (
        "the database server cannot be reached"
    )
    assert fault_cause(psycopg.errors.UndefinedTable()) is None
    assert fault_cause(psycopg.errors.UniqueViolation()) is None


def test_a_writer_holding_the_lock_too_long_gets_503_and_writes_heal(app, make_app):
    app = make_app(SQLITE_BUSY_TIMEOUT_MS=200)
    client = app.test_client()
    client.post("/auth/login", data={"username": "test", "password": "test"})
    holder = postgres.connect(app.config["DATABASE"])
    holder.begin_write()
    try:
        response = client.post("/create", data={"title": "waits", "body": ""})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "10"
        assert b"cannot save anything right now" in response.data
        health = client.get("/healthz")
        assert health.status_code == 503
        assert "lock" in health.json["reason"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.post("/create", data={"title": "saved", "body": ""}).status_code == 302
    with app.app_context():
        titles = [row[0] for row in get_db().execute("SELECT title FROM post")]
    assert "saved" in titles and "waits" not in titles


def test_a_read_only_database_gets_503(app, postgresql_databases, make_app):
    name = current_database(app)
    postgresql_databases.admin.execute(
        f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'
    )
    try:
        client = make_app().test_client()
        # Logging in writes (a session record): refused, and said so.
        response = client.post("/auth/login", data={"username": "test", "password": "test"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "10"
        assert client.get("/healthz").json["reason"].endswith("the database is read-only")
    finally:
        postgresql_databases.admin.execute(f'ALTER DATABASE "{name}" RESET ALL')


def test_connections_cut_by_the_server_heal_by_themselves(app, postgresql_databases, caplog):
    client = app.test_client()
    assert client.get("/").status_code == 200
    name = current_database(app)
    postgresql_databases.admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    statuses = [client.get("/").status_code for _ in range(3)]
    # The pool's connection that the server cut answers 503 once, then is replaced.
    assert statuses[0] in (200, 503)
    assert statuses[-1] == 200
    if statuses[0] == 503:
        assert "database fault" in caplog.text


def test_a_page_cache_watch_cut_by_the_server_keeps_nothing_until_it_reopens(
    app, postgresql_databases
):
    cache = PageCache(app.config["DATABASE"], 16_000)
    generation = cache.current_generation()
    assert cache.current_generation() == generation  # the prepared version read
    (pid,) = cache.watch.execute("SELECT pg_backend_pid()").fetchone()
    postgresql_databases.admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    assert cache.current_generation() is None
    assert cache.watch is None
    assert cache.current_generation() == generation + 1


def test_an_unreachable_server_gets_503_with_retry_after(make_app, tmp_path):
    app = make_app(
        DATABASE=f"postgresql://postgres@/nowhere?host={tmp_path}", SQLITE_BUSY_TIMEOUT_MS=200
    )
    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json["reason"] == "the database cannot be read"


def test_a_health_probe_after_a_fault_commits_its_write(app):
    with app.app_context():
        db = get_db()
        assert postgres.write_problem(db, commit=True) is None
        assert not db.in_transaction
        assert schema_version(db) == latest_version("postgresql")


def test_a_bug_in_the_health_probe_is_not_called_a_fault(app, monkeypatch):
    def broken(db, version):
        raise psycopg.errors.UndefinedColumn("a bug")

    monkeypatch.setattr(postgres, "set_schema_version", broken)
    with app.app_context(), pytest.raises(psycopg.errors.UndefinedColumn):
        postgres.write_problem(get_db())


def test_a_programming_error_stays_a_bug(app):
    with app.app_context(), pytest.raises(psycopg.errors.UndefinedTable):
        get_db().execute("SELECT * FROM nowhere")


# --- migrations -------------------------------------------------------------------------


def test_init_db_on_many_servers_at_once_applies_each_migration_once(postgresql_databases):
    _, url = postgresql_databases.create()
    apps = [create_app({"TESTING": True, "DATABASE": url}) for _ in range(3)]
    start_together = threading.Barrier(len(apps), timeout=30)
    applied, errors = [], []

    def run(app):
        try:
            with app.app_context():
                start_together.wait()
                applied.extend(init_db())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(applied) == [name for _, name, _ in flaskr_db.migrations("postgresql")]
    with apps[0].app_context():
        assert schema_version(get_db()) == latest_version("postgresql")
    for app in apps:
        app.extensions["postgresql"].close()


def test_a_database_newer_than_the_code_is_refused(app, runner):
    with app.app_context(), transaction() as db:
        db.execute("UPDATE schema_version SET version = 999")
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 1
    assert "schema version 999, newer than this Flaskr" in result.output


# --- many servers -----------------------------------------------------------------------


def test_a_change_through_one_server_empties_every_servers_page_cache(app, make_app):
    other = make_app()
    writer = other.test_client()
    writer.post("/auth/login", data={"username": "test", "password": "test"})
    visitor = app.test_client()
    assert b"from the other server" not in visitor.get("/").data
    assert app.extensions["page_cache"].pages  # the index is kept
    writer.post("/create", data={"title": "from the other server", "body": ""})
    assert b"from the other server" in visitor.get("/").data


def test_reading_sessions_does_not_empty_the_page_cache(app):
    visitor = app.test_client()
    visitor.get("/")
    reader = app.test_client()
    reader.post("/auth/login", data={"username": "other", "password": "other"})
    reader.get("/")
    # A login writes sessions and the throttling tables only: visitors' pages stay.
    assert app.extensions["page_cache"].pages


# --- backup -----------------------------------------------------------------------------


def test_backup_writes_a_dump_that_pg_restore_reads(app, runner, tmp_path, postgresql_databases):
    path = tmp_path / "site.dump"
    result = runner.invoke(args=["backup", str(path)])
    assert result.exit_code == 0
    assert f"Backed up the database to {path} (pg_dump's custom format)." in result.output
    assert path.read_bytes().startswith(b"PGDMP")
    name, url = postgresql_databases.create()
    restored = subprocess.run(
        ["pg_restore", "--no-owner", f"--dbname={url}", str(path)], capture_output=True
    )
    assert restored.returncode == 0, restored.stderr
    with psycopg.connect(url) as copy:
        assert copy.execute("SELECT title FROM post").fetchall() == [("test title",)]
    postgresql_databases.drop(name)


def test_backup_without_pg_dump_says_what_to_install(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(postgres.shutil, "which", lambda name: None)
    result = runner.invoke(args=["backup", str(tmp_path / "site.dump")])
    assert result.exit_code == 1
    assert "pg_dump is not installed" in result.output
    assert not (tmp_path / "site.dump").exists()


def test_a_failed_pg_dump_leaves_no_file(make_app, tmp_path):
    app = make_app(DATABASE=f"postgresql://postgres@/nowhere?host={tmp_path}")
    path = tmp_path / "site.dump"
    result = app.test_cli_runner().invoke(args=["backup", str(path)])
    assert result.exit_code == 1
    assert "pg_dump failed:" in result.output
    assert not path.exists()
    assert not (tmp_path / "site.dump.partial").exists()


def test_a_logout_through_one_server_ends_the_session_on_every_server(app, make_app):
    first, other = make_app(SECRET_KEY="one site"), make_app(SECRET_KEY="one site")
    browser = first.test_client()
    browser.post("/auth/login", data={"username": "test", "password": "test"})
    assert b"Log Out" in browser.get("/").data
    cookie = browser.get_cookie("session")
    thief = other.test_client()
    thief.set_cookie("session", cookie.value)
    assert b"Log Out" in thief.get("/").data
    logout = other.test_client()
    logout.set_cookie("session", cookie.value)
    logout.post("/auth/logout")
    # The copy replayed on the first server right after: anonymous.
    assert b"Log In" in browser.get("/").data
    assert b"Log In" in thief.get("/").data
