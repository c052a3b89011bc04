import os
import re
import sqlite3
import threading
from contextlib import contextmanager

import pytest
from images import fetch, image_bytes, post_image
from tutorial import make_tutorial_database

from flaskr import create_app
from flaskr import db as flaskr_db
from flaskr.db import get_db, init_db, latest_version, split_statements, transaction
from flaskr.uploads import MIMETYPES


@pytest.mark.sqlite_only
def test_get_close_db(app):
    with app.app_context():
        db = get_db()
        assert db is get_db()

    with pytest.raises(sqlite3.ProgrammingError) as e:
        db.execute("SELECT 1")

    assert "closed" in str(e.value)


def test_init_db_command(runner, monkeypatch):
    class Recorder:
        called = False

    def fake_init_db():
        Recorder.called = True

    monkeypatch.setattr("flaskr.db.init_db", fake_init_db)
    result = runner.invoke(args=["init-db"])
    assert "Initialized" in result.output
    assert Recorder.called


@pytest.mark.sqlite_only
def test_new_database_is_at_latest_version_in_wal_mode(app):
    with app.app_context():
        db = get_db()
        assert db.execute("PRAGMA user_version").fetchone()[0] == latest_version()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.sqlite_only
def test_every_connection_sets_its_pragmas(app):
    with app.app_context():
        db = get_db()
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


@pytest.mark.sqlite_only
def test_synchronous_is_configurable(make_app):
    app = make_app(SQLITE_SYNCHRONOUS="NORMAL", SQLITE_BUSY_TIMEOUT_MS=1234)
    with app.app_context():
        db = get_db()
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 1234


@pytest.mark.sqlite_only
def test_foreign_keys_are_enforced(app):
    with app.app_context(), pytest.raises(sqlite3.IntegrityError):
        get_db().execute("INSERT INTO post (title, body, author_id) VALUES ('x', '', 99)")


def test_init_db_twice_changes_nothing(app, runner, count):
    result = runner.invoke(args=["init-db"])
    assert "Initialized the database." in result.output
    assert "applied" not in result.output
    assert count("user") == 2
    assert count("post") == 1


@pytest.mark.sqlite_only
def test_init_db_reports_migrations_applied(make_app):
    result = make_app().test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0
    assert "applied 0001_tutorial.sql" in result.output


@pytest.mark.sqlite_only
def test_upgrade_keeps_a_tutorial_database_working(make_app, tmp_path):
    path = tmp_path / "flaskr.sqlite"
    make_tutorial_database(path)
    app = make_app()

    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output

    with app.app_context():
        db = get_db()
        assert db.execute("PRAGMA user_version").fetchone()[0] == latest_version()
        users = db.execute("SELECT id, username FROM user ORDER BY id").fetchall()
        posts = db.execute("SELECT title, body, created FROM post ORDER BY id").fetchall()
    assert [tuple(u) for u in users] == [(1, "test"), (2, "other")]
    assert [p["title"] for p in posts] == ["first", "second"]
    assert posts[0]["body"] == "hello\nworld"
    assert str(posts[1]["created"]) == "2018-02-01 12:30:00"

    client = app.test_client()
    # Every post is still published, dated as before.
    index = client.get("/").data
    assert b"first" in index and b"on 2018-02-01" in index
    response = client.post("/auth/login", data={"username": "test", "password": "test"})
    assert response.headers["Location"] == "/"
    page = client.get("/").data
    assert b"by other on 2018-02-01" in page
    assert b'href="/1/update"' in page


@pytest.mark.sqlite_only
def test_database_newer_than_the_code_is_refused(app, runner):
    with app.app_context():
        get_db().execute("PRAGMA user_version = 999")
    result = runner.invoke(args=["init-db"])
    assert result.exit_code != 0
    assert "schema version 999, newer than this Flaskr" in result.output


@pytest.mark.sqlite_only
def test_failed_migration_leaves_nothing_half_done(app, monkeypatch):
    broken = [
        *flaskr_db.migrations(),
        (
            999,
            "0999_broken.sql",
            "CREATE TABLE half (id INTEGER);\nINSERT INTO nowhere VALUES (1);",
        ),
    ]
    monkeypatch.setattr(flaskr_db, "migrations", lambda kind="sqlite": broken)
    with app.app_context():
        with pytest.raises(sqlite3.OperationalError, match="nowhere"):
            init_db()
        db = get_db()
        assert db.execute("PRAGMA user_version").fetchone()[0] == broken[-2][0]
        assert db.execute("SELECT name FROM sqlite_schema WHERE name = 'half'").fetchone() is None
        assert not db.in_transaction


def test_split_statements_keeps_triggers_whole():
    sql = (
        "-- comment\nCREATE TABLE a (x);\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n-- end\n"
    )
    statements = split_statements(sql)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


def test_split_statements_refuses_an_unfinished_statement():
    with pytest.raises(ValueError, match="incomplete SQL statement"):
        split_statements("CREATE TABLE a (x);\nCREATE TABLE b (y)")


def test_reset_asks_first_and_keeps_data_on_no(runner, count):
    result = runner.invoke(args=["init-db", "--reset"], input="n\n")
    assert result.exit_code != 0
    assert "deletes every user" in result.output
    assert count("post") == 1


def test_reset_on_yes_starts_empty(runner, count):
    result = runner.invoke(args=["init-db", "--reset"], input="y\n")
    assert result.exit_code == 0
    assert "Initialized" in result.output
    assert count("user") == 0
    assert count("post") == 0


def test_reset_with_yes_flag_does_not_ask(app, client, auth, runner, count):
    auth.login()
    post_image(client, image_bytes())
    result = runner.invoke(args=["init-db", "--reset", "--yes"])
    assert result.exit_code == 0
    assert "Continue?" not in result.output
    assert count("post") == 0
    assert count("image") == 0
    with app.app_context():
        db = get_db()
        assert flaskr_db.schema_version(db) == latest_version(flaskr_db.backend(db))


def test_transaction_rolls_back_on_error(app, count):
    with app.app_context(), pytest.raises(RuntimeError):
        with transaction() as db:
            db.execute("INSERT INTO post (title, body, author_id) VALUES ('x', '', 1)")
            raise RuntimeError("abandon")
    assert count("post") == 1


@pytest.mark.sqlite_only
def test_backup_is_a_consistent_copy(app, runner, tmp_path):
    with app.app_context():
        # A writer is in the middle of a transaction while the backup runs.
        writer = sqlite3.connect(app.config["DATABASE"], isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO post (title, body, author_id) VALUES ('uncommitted', '', 1)")
        target = tmp_path / "backup.sqlite"
        result = runner.invoke(args=["backup", str(target)])
        writer.execute("ROLLBACK")
        writer.close()

    assert result.exit_code == 0, result.output
    assert "integrity check: ok" in result.output
    copy = sqlite3.connect(target)
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in copy.execute("SELECT title FROM post")] == ["test title"]
    assert copy.execute("PRAGMA user_version").fetchone()[0] == latest_version()
    copy.close()
    assert not (tmp_path / "backup.sqlite.partial").exists()


def test_backup_never_overwrites(runner, tmp_path):
    target = tmp_path / "existing.sqlite"
    target.write_text("precious")
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert target.read_text() == "precious"


def test_app_without_database_file_can_be_created(tmp_path):
    # Creating the app never touches the database; init-db does.
    create_app({"TESTING": True, "DATABASE": str(tmp_path / "missing" / "x.sqlite")})
    assert not (tmp_path / "missing").exists()


@pytest.mark.sqlite_only
def test_a_failed_commit_is_rolled_back(app, count):
    # A deferred foreign key makes COMMIT itself fail, leaving SQLite's transaction open.
    with app.app_context():
        db = get_db()
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            with transaction() as db:
                db.execute("PRAGMA defer_foreign_keys = ON")
                db.execute("INSERT INTO post (title, body, author_id) VALUES ('orphan', '', 99)")
        assert not db.in_transaction
        other = sqlite3.connect(app.config["DATABASE"], timeout=0)
        other.execute("BEGIN IMMEDIATE")  # the write lock was released
        other.execute("ROLLBACK")
        other.close()
    assert count("post") == 1


@pytest.mark.sqlite_only
def test_an_error_that_ended_the_transaction_is_the_one_raised(app, count):
    # SQLITE_FULL rolls the whole transaction back by itself; a ROLLBACK after it would
    # fail ("no transaction is active") and hide the real error.
    with app.app_context():
        db = get_db()
        db.execute("PRAGMA max_page_count = 1")
        with pytest.raises(sqlite3.OperationalError) as raised:
            with transaction(db):
                db.execute(
                    "INSERT INTO post (title, body, author_id) VALUES ('big', ?, 1)", ("x" * 20000,)
                )
        assert raised.value.sqlite_errorname == "SQLITE_FULL"
        assert not db.in_transaction
    assert count("post") == 1


class RollbackFails(sqlite3.Connection):
    """A connection whose ROLLBACK fails, as it can when the disk fails."""

    def execute(self, sql, *args):
        if sql == "ROLLBACK":
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


@pytest.mark.sqlite_only
def test_a_failed_rollback_does_not_hide_the_first_error(app, count):
    with app.app_context():
        from flask import g

        broken = sqlite3.connect(
            app.config["DATABASE"], isolation_level=None, factory=RollbackFails
        )
        g.db = broken
        with pytest.raises(RuntimeError, match="the first error"):
            with transaction():
                broken.execute("INSERT INTO post (title, body, author_id) VALUES ('x', '', 1)")
                raise RuntimeError("the first error")
        # The connection is closed (which rolled back) and never handed out again.
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            broken.execute("SELECT 1")
        assert get_db() is not broken
        with transaction() as db:
            db.execute("INSERT INTO post (title, body, author_id) VALUES ('next', '', 1)")
    assert count("post") == 2


@pytest.mark.sqlite_only
def test_a_failed_rollback_of_a_connection_of_ones_own(app):
    broken = sqlite3.connect(app.config["DATABASE"], isolation_level=None, factory=RollbackFails)
    with pytest.raises(RuntimeError):
        with transaction(broken):
            raise RuntimeError("outside any app context")
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        broken.execute("SELECT 1")


@pytest.mark.parametrize(
    ("make_error", "cause"),
    (
        ("readonly", "the database is read-only"),
        ("full", "the disk or the database is full"),
        ("busy", "another writer held the lock past the busy timeout"),
        ("syntax", None),
        ("missing table", None),
        ("constraint", None),
    ),
)
def test_fault_cause_tells_faults_from_bugs(tmp_path, make_error, cause):
    path = tmp_path / "x.sqlite"
    db = sqlite3.connect(path, isolation_level=None, timeout=0)
    db.execute("CREATE TABLE t (x UNIQUE)")
    db.execute("INSERT INTO t VALUES (1)")
    statements = {
        "readonly": ("PRAGMA query_only = ON", "INSERT INTO t VALUES (2)"),
        "full": ("PRAGMA max_page_count = 1", "INSERT INTO t VALUES (zeroblob(20000))"),
        "busy": ("SELECT 1", "BEGIN IMMEDIATE"),
        "syntax": ("SELECT 1", "SELEC 1"),
        "missing table": ("SELECT 1", "SELECT * FROM nowhere"),
        "constraint": ("SELECT 1", "INSERT INTO t VALUES (1)"),
    }[make_error]
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    if make_error != "busy":
        holder.execute("ROLLBACK")
    db.execute(statements[0])
    with pytest.raises(sqlite3.Error) as raised:
        db.execute(statements[1])
    assert flaskr_db.fault_cause(raised.value) == cause
    holder.close()
    db.close()


def migration_names():
    return [name for _, name, _ in flaskr_db.migrations()]


@pytest.mark.parametrize("crash_after", range(1, len(flaskr_db.migrations()) + 1))
@pytest.mark.sqlite_only
def test_a_crash_right_after_a_migration_commits_is_resumed(make_app, monkeypatch, crash_after):
    class Crash(BaseException):
        """The process dying the moment a migration's transaction has committed."""

    real_transaction = flaskr_db.transaction
    commits = []

    @contextmanager
    def dying_transaction(db=None):
        with real_transaction(db) as db:
            yield db
        commits.append(db)
        if len(commits) == crash_after:
            raise Crash

    app = make_app()
    monkeypatch.setattr(flaskr_db, "transaction", dying_transaction)
    with app.app_context(), pytest.raises(Crash):
        init_db()
    monkeypatch.setattr(flaskr_db, "transaction", real_transaction)

    # What committed carries its schema version: the next init-db starts after it.
    with app.app_context():
        assert flaskr_db.schema_version(get_db()) == flaskr_db.migrations()[crash_after - 1][0]
        assert init_db() == migration_names()[crash_after:]
        assert flaskr_db.schema_version(get_db()) == latest_version()


@pytest.mark.parametrize("existing", (False, True))
@pytest.mark.sqlite_only
def test_init_db_in_parallel_applies_each_migration_once(make_app, existing):
    app = make_app()
    if existing:
        # A database at an intermediate version, as an upgrade finds it.
        with app.app_context():
            db = get_db()
            for _, _, sql in flaskr_db.migrations()[:2]:
                db.executescript(sql)
            db.execute("PRAGMA user_version = 2")
    # Both runs reach their first migration before either takes the write lock.
    both_ready = threading.Barrier(2, timeout=10)
    real_transaction = flaskr_db.transaction
    started = threading.local()

    @contextmanager
    def racing_transaction(db=None):
        if not getattr(started, "done", False):
            started.done = True
            both_ready.wait()
        with real_transaction(db) as db:
            yield db

    applied, errors = [], []

    def run():
        try:
            with app.app_context():
                applied.append(init_db())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(flaskr_db, "transaction", racing_transaction)
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    expected = migration_names()[2:] if existing else migration_names()
    assert sorted(applied[0] + applied[1]) == expected
    with app.app_context():
        assert flaskr_db.schema_version(get_db()) == latest_version()


@pytest.mark.sqlite_only
def test_upgrade_from_an_intermediate_version_keeps_its_rows(make_app, monkeypatch):
    app = make_app()
    # A database that an older Flaskr (schema version 3) made and used.
    first_three = flaskr_db.migrations()[:3]
    monkeypatch.setattr(flaskr_db, "migrations", lambda kind="sqlite": first_three)
    with app.app_context():
        assert init_db() == migration_names()[:3]
        db = get_db()
        assert flaskr_db.schema_version(db) == 3
        from werkzeug.security import generate_password_hash

        db.execute(
            "INSERT INTO user (username, password) VALUES ('veteran', ?)",
            (generate_password_hash("old secret pw", method="pbkdf2:sha256:50000"),),
        )
        db.executemany(
            "INSERT INTO post (title, body, author_id, created) VALUES (?, ?, 1, ?)",
            [
                ("Owls at night", "barn owls hunting", "2020-03-01 10:00:00"),
                ("Second post", "still here", "2020-04-01 10:00:00"),
            ],
        )
        db.execute("INSERT INTO login_failure (username, address) VALUES ('veteran', '10.0.0.1')")
    monkeypatch.undo()

    with app.app_context():
        assert init_db() == migration_names()[3:]
        db = get_db()
        assert flaskr_db.schema_version(db) == latest_version()
        posts = db.execute("SELECT title, body, created FROM post ORDER BY id").fetchall()
        assert [tuple(p)[:2] for p in posts] == [
            ("Owls at night", "barn owls hunting"),
            ("Second post", "still here"),
        ]
        assert str(posts[0]["created"]) == "2020-03-01 10:00:00"
        assert db.execute("SELECT COUNT(*) FROM login_failure").fetchone()[0] == 1

    client = app.test_client()
    # Posts written before the search index existed are found; the old hash logs in.
    assert b"Owls at night" in client.get("/search?q=owl").data
    login = client.post("/auth/login", data={"username": "veteran", "password": "old secret pw"})
    assert login.headers["Location"] == "/"
    assert client.post("/1/comment", data={"body": "still works"}).status_code == 302
    assert client.post("/1/like").status_code == 302
    page = client.get("/1/owls-at-night").data
    assert b"still works" in page


@pytest.mark.sqlite_only
def test_init_db_moves_an_older_sites_image_files_into_the_database(make_app, monkeypatch):
    app = make_app()
    folder = app.config["UPLOAD_FOLDER"]
    # A site as the Flaskr before images moved into the database (schema 9) left it.
    before_images = flaskr_db.migrations()[:9]
    monkeypatch.setattr(flaskr_db, "migrations", lambda kind="sqlite": before_images)
    files = {
        f"{1:032x}.png": image_bytes("PNG", size=(40, 30)),
        f"{2:032x}.jpg": image_bytes("JPEG"),  # an avatar
        f"{3:032x}.gif": b"GIF89a cut short",  # damaged on disk, still served as it was
        f"{4:032x}.png": image_bytes("PNG"),  # no post names it any more
    }
    os.makedirs(os.path.join(folder, "pending"))
    for name, data in {**files, f"pending/{5:032x}.png": image_bytes()}.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    with app.app_context():
        init_db()
        db = get_db()
        db.executescript(
            "INSERT INTO user (username, password) VALUES ('test', 'x');"
            f"UPDATE user SET avatar = '{2:032x}.jpg';"
            "INSERT INTO post (title, body, author_id, image) VALUES"
            f" ('owl', '', 1, '{1:032x}.png'), ('bat', '', 1, '{3:032x}.gif');"
        )
    monkeypatch.undo()

    output = app.test_cli_runner().invoke(args=["init-db"]).output
    moved = sum(len(files[f"{n:032x}.{e}"]) for n, e in ((1, "png"), (2, "jpg"), (3, "gif")))
    assert "  applied 0010_images.sql\n" in output
    assert f"  moved 3 images ({moved / 1e6:.1f} MB) from {folder} into the database\n" in output
    assert f"  left 1 files that no post or profile names in {folder}\n" in output
    assert os.listdir(folder) == [f"{4:032x}.png"]

    client = app.test_client()
    page = client.get("/").data.decode()
    assert re.search(rf'src="/uploads/{1:032x}.png"\s+alt="" width="40" height="30"', page)
    assert re.search(rf'src="/uploads/{3:032x}.gif"\s+alt="" loading="lazy">', page)
    for name in (f"{1:032x}.png", f"{2:032x}.jpg", f"{3:032x}.gif"):
        response, data = fetch(client, f"/uploads/{name}")
        assert data == files[name]
        assert response.mimetype == MIMETYPES[name.rsplit(".", 1)[1]]
        assert response.headers["Content-Security-Policy"] == "sandbox"

    # Run again (say a copy of a moved file came back from a restore): nothing is moved twice.
    with open(os.path.join(folder, f"{1:032x}.png"), "wb") as f:
        f.write(b"a stale copy")
    output = app.test_cli_runner().invoke(args=["init-db"]).output
    assert "moved" not in output and "left 1 files" in output
    assert os.listdir(folder) == [f"{4:032x}.png"]
    assert fetch(client, f"/uploads/{1:032x}.png")[1] == files[f"{1:032x}.png"]
    # Once the folder is empty it goes, and init-db says nothing more about images.
    os.remove(os.path.join(folder, f"{4:032x}.png"))
    assert app.test_cli_runner().invoke(args=["init-db"]).output == "Initialized the database.\n"
    assert not os.path.exists(folder)


@pytest.fixture
def as_file_owner(monkeypatch):
    """os.access as an ordinary user owning the files sees it (root ignores file modes)."""
    real_access = os.access

    def access(path, mode):
        if mode == os.W_OK and os.path.exists(path):
            return bool(os.stat(path).st_mode & 0o200)
        return real_access(path, mode)

    monkeypatch.setattr(flaskr_db.os, "access", access)


def leave_read_only_journal(path, database_mode=0o644):
    """What a connection opened while the database file was 0444 leaves beside it."""
    for suffix in ("-wal", "-shm"):
        open(f"{path}{suffix}", "ab").close()
        os.chmod(f"{path}{suffix}", 0o444)
    os.chmod(path, database_mode)


def mode(path):
    return oct(os.stat(path).st_mode & 0o777)


@pytest.mark.sqlite_only
def test_a_read_only_journal_is_repaired_when_the_app_starts(app, make_app, as_file_owner):
    path = app.config["DATABASE"]
    leave_read_only_journal(path, 0o640)
    make_app()
    assert (mode(f"{path}-wal"), mode(f"{path}-shm")) == ("0o640", "0o640")


@pytest.mark.sqlite_only
def test_a_journal_is_left_alone_while_the_database_is_read_only(app, make_app, as_file_owner):
    path = app.config["DATABASE"]
    leave_read_only_journal(path, 0o444)
    make_app()
    assert (mode(path), mode(f"{path}-wal"), mode(f"{path}-shm")) == ("0o444",) * 3


@pytest.mark.sqlite_only
def test_a_journal_another_user_owns_is_left_to_the_operator(app, as_file_owner, monkeypatch):
    path = app.config["DATABASE"]
    leave_read_only_journal(path)

    def chmod(path, mode):
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr(flaskr_db.os, "chmod", chmod)
    flaskr_db.repair_journal_modes(path)  # no error
    assert mode(f"{path}-shm") == "0o444"
