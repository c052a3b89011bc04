"""copy-db: a whole site moved into an empty database, SQLite to PostgreSQL and back."""

import io
import re
import sqlite3

import pytest
from images import image_bytes
from live import FAST_HASH

from flaskr import copydb, create_app
from flaskr.db import connect, get_db, init_db, latest_version, table_names

TARGETS = ("sqlite", "postgresql")
BOOKKEEPING = ("schema_version", "site_version")


@pytest.fixture(params=TARGETS)
def target(request, tmp_path):
    """A URL of a new, empty database of each backend (no schema yet), for the copy."""
    if request.param == "sqlite":
        return str(tmp_path / "copy.sqlite")
    databases = request.getfixturevalue("postgresql_databases")
    name, url = databases.create()
    request.addfinalizer(lambda: databases.drop(name))
    return url


@pytest.fixture
def open_app():
    """Return a factory for apps on any database (the copy), closing their pools after."""
    made = []

    def open_app(database):
        app = create_app({"TESTING": True, "DATABASE": database, "PASSWORD_HASH_METHOD": FAST_HASH})
        made.append(app)
        return app

    yield open_app
    for app in made:
        if "postgresql" in app.extensions:
            app.extensions["postgresql"].close()
            if "page_cache" in app.extensions:
                app.extensions["page_cache"].close_watch()


def fill_site(app, query):
    """Give the site what a lived-in one has: tags, an image, comments, likes, a draft,
    sessions, a failed login, a site setting and a one-time link."""
    client = app.test_client()
    client.post("/auth/login", data={"username": "test", "password": "test"})
    client.post(
        "/create",
        data={
            "title": "with image",
            "body": "see *this* tomato",
            "tags": "Garden, Tomatoes",
            "image": (io.BytesIO(image_bytes("PNG")), "a.png", "image/png"),
        },
        content_type="multipart/form-data",
    )
    client.post("/create", data={"title": "quiet words", "body": "", "action": "draft"})
    client.post("/2/comment", data={"body": "first!"})
    client.post("/1/like")
    other = app.test_client()
    other.post("/auth/login", data={"username": "other", "password": "wrong"})
    other.post("/auth/login", data={"username": "other", "password": "other"})
    other.post("/2/like")
    other.post("/2/comment", data={"body": "second"})
    query("INSERT INTO site_setting (name, value) VALUES ('title', 'Copied Garden')")
    query(
        "INSERT INTO one_time_link (token_hash, kind, created_by, expires)"
        " VALUES ('abc', 'invite', 1, '2999-01-01 00:00:00')"
    )


def counts(app):
    """Return {table: rows} of every table of an app's database, bookkeeping aside."""
    with app.app_context():
        db = get_db()
        return {
            table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
            for table in table_names(db)
            if table not in BOOKKEEPING
        }


def copy(app, url):
    """Run copy-db on the app's database; return (exit code, everything it printed)."""
    result = app.test_cli_runner().invoke(args=["copy-db", url])
    return result.exit_code, result.output


def page(client, path):
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 200
    return response.data


def test_a_copy_shows_the_same_site(app, query, target, open_app):
    fill_site(app, query)
    code, output = copy(app, target)
    assert code == 0, output
    copied = open_app(target)
    assert counts(copied) == counts(app)
    assert counts(copied)["image"] == 1 and counts(copied)["user_session"] == 2
    before, after = app.test_client(), copied.test_client()
    for path in ("/", "/1", "/2", "/tag/garden", "/user/test", "/feed.atom"):
        assert page(after, path) == page(before, path)
    assert b"Copied Garden" in page(after, "/")
    (name,) = re.findall(rb'src="/uploads/([^"]+)"', page(before, "/2"))
    assert page(after, f"/uploads/{name.decode()}") == image_bytes_of(app, name.decode())
    # Search runs on the copy's own index (SQLite's FTS or PostgreSQL's tsvector).
    assert b'href="/2/with-image"' in page(after, "/search?q=tomatoes")
    assert b"/1/" not in page(after, "/search?q=tomatoes")


def image_bytes_of(app, name):
    with app.app_context():
        return bytes(
            get_db().execute("SELECT data FROM image WHERE name = ?", (name,)).fetchone()[0]
        )


def test_the_copy_says_what_it_copied_and_where(app, query, target):
    fill_site(app, query)
    code, output = copy(app, target)
    assert code == 0
    lines = output.splitlines()
    assert "  user: 2" in lines and "  post: 3" in lines and "  comment: 2" in lines
    assert re.fullmatch(
        r"Copied 2 users, .*3 posts, .*2 comments, .*2 likes.* to .+ in \d+\.\d s\.", lines[-1]
    )
    assert lines[-1].count(target.split("?")[0]) == 1


def test_a_copy_and_a_copy_back_keep_everything(app, query, target, open_app, tmp_path):
    fill_site(app, query)
    assert copy(app, target)[0] == 0
    back = str(tmp_path / "back.sqlite")
    assert copy(open_app(target), back)[0] == 0
    copied_back = open_app(back)
    assert counts(copied_back) == counts(app)
    assert page(copied_back.test_client(), "/2") == page(app.test_client(), "/2")


def test_logging_in_and_writing_on_the_copy(app, query, target, open_app):
    fill_site(app, query)
    assert copy(app, target)[0] == 0
    copied = open_app(target)
    client = copied.test_client()
    response = client.post("/auth/login", data={"username": "other", "password": "other"})
    assert response.headers["Location"] == "/"
    response = client.post("/create", data={"title": "new on the copy", "body": "hello"})
    assert response.status_code == 302
    with copied.app_context():
        db = get_db()
        newest = db.execute("SELECT id, title FROM post ORDER BY id DESC LIMIT 1").fetchone()
        assert tuple(newest) == (4, "new on the copy")
        # Every numbered table goes on after the copied ids, not only posts.
        db.execute("INSERT INTO tag (name) VALUES ('fresh')")
        assert db.execute("SELECT MAX(id) FROM tag").fetchone()[0] == 3


def test_a_copy_to_sqlite_counts_on_from_the_copied_ids(app, query, tmp_path):
    fill_site(app, query)
    target = str(tmp_path / "copy.sqlite")
    assert copy(app, target)[0] == 0
    db = sqlite3.connect(target)
    try:
        assert dict(db.execute("SELECT name, seq FROM sqlite_sequence"))["post"] == 3
    finally:
        db.close()


def test_a_target_that_is_not_empty_is_refused_and_left_untouched(app, query, target, open_app):
    other = open_app(target)
    with other.app_context():
        init_db()
        get_db().execute("INSERT INTO user (username, password) VALUES ('x', 'y')")
        get_db().execute("INSERT INTO post (title, body, author_id) VALUES ('a', 'b', 1)")
        get_db().execute("INSERT INTO post (title, body, author_id) VALUES ('c', 'd', 1)")
    before = counts(other)
    code, output = copy(app, target)
    assert code == 1
    assert output == (
        "Error: The target already holds 1 user and 2 posts;"
        " copy-db only fills an empty database.\n"
    )
    assert counts(other) == before


def test_a_target_used_only_by_a_failed_login_is_not_empty(app, target, open_app):
    other = open_app(target)
    with other.app_context():
        init_db()
    other.test_client().post("/auth/login", data={"username": "x", "password": "wrong"})
    code, output = copy(app, target)
    assert code == 1 and re.search(r"already holds (.* and )?1 login failure", output)


def test_content_in_an_older_schema_is_refused_before_any_migration(app, tmp_path):
    target = str(tmp_path / "old.sqlite")
    db = sqlite3.connect(target)
    db.executescript(
        "CREATE TABLE user (id INTEGER PRIMARY KEY, username TEXT, password TEXT);"
        "INSERT INTO user VALUES (1, 'x', 'y');"
    )
    db.close()
    code, output = copy(app, target)
    assert code == 1 and "already holds 1 user;" in output
    db = sqlite3.connect(target)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["user"]
    finally:
        db.close()


def test_a_target_initialised_and_never_used_is_empty(app, target, open_app):
    with open_app(target).app_context():
        init_db()
    code, output = copy(app, target)
    assert code == 0 and output.splitlines()[-1].startswith("Copied 2 users and 1 post to ")


def test_a_target_newer_than_this_flaskr_is_refused(app, tmp_path):
    target = str(tmp_path / "new.sqlite")
    db = connect(target)
    db.execute("PRAGMA user_version = 999")
    db.close()
    code, output = copy(app, target)
    assert code == 1
    assert output == (
        f"Error: {target} is at schema version 999, newer than this Flaskr ({latest_version()}).\n"
    )


@pytest.mark.parametrize("url", ["mysql://u:p@host/db", "sqlite:///x.db"])
def test_a_url_of_another_kind_gets_one_line(app, url):
    code, output = copy(app, url)
    assert code == 1
    scheme = url.partition(":")[0]
    assert output == (
        "Error: copy-db copies to a file path (SQLite) or a postgresql:// URL,"
        f" not a {scheme}: URL.\n"
    )


def test_a_target_that_cannot_be_opened_gets_one_line(app, tmp_path):
    target = str(tmp_path / "no such folder" / "copy.sqlite")
    code, output = copy(app, target)
    assert code == 1 and output == f"Error: Cannot open {target}: unable to open database file\n"


def test_a_source_not_at_the_current_schema_is_refused(app, query, backend, target):
    if backend == "sqlite":
        query("PRAGMA user_version = 1")
    else:
        query("UPDATE schema_version SET version = 1")
    code, output = copy(app, target)
    assert code == 1
    assert output == (
        "Error: The database is not at this Flaskr's schema:"
        " run 'flask --app flaskr init-db' first.\n"
    )


def test_a_failure_in_the_middle_leaves_the_target_empty(app, query, target, open_app, monkeypatch):
    fill_site(app, query)
    read_batches = copydb.read_batches
    tables = []

    def failing(db, table, columns):
        tables.append(table)
        if len(tables) > 1:
            raise sqlite3.OperationalError("disk I/O error")
        return read_batches(db, table, columns)

    monkeypatch.setattr(copydb, "read_batches", failing)
    code, output = copy(app, target)
    assert code == 1
    shown = copydb.hide_password(target)
    last = output.splitlines()[-1]
    assert last == f"Error: Copying to {shown} failed, nothing was copied: disk I/O error"
    copied = open_app(target)
    assert set(counts(copied).values()) == {0}
    # The way is clear for another try.
    monkeypatch.setattr(copydb, "read_batches", read_batches)
    assert copy(app, target)[0] == 0
    assert counts(copied) == counts(app)


def test_a_lost_row_rolls_back_and_names_its_table(app, query, target, open_app, monkeypatch):
    fill_site(app, query)
    read_batches = copydb.read_batches

    def losing(db, table, columns):
        for rows in read_batches(db, table, columns):
            yield rows[1:] if table == "comment" else rows

    monkeypatch.setattr(copydb, "read_batches", losing)
    code, output = copy(app, target)
    assert code == 1
    assert output.splitlines()[-1] == (
        "Error: The copy of comment holds 1 rows, not 2: nothing was copied to "
        + copydb.hide_password(target)
        + "."
    )
    assert set(counts(open_app(target)).values()) == {0}


def test_progress_is_shown_for_big_tables_only(app, query, target, monkeypatch):
    fill_site(app, query)
    monkeypatch.setattr(copydb, "BATCH", 1)
    monkeypatch.setattr(copydb, "PROGRESS_EVERY", 2)
    code, output = copy(app, target)
    assert code == 0
    lines = output.splitlines()
    assert "  post: 2 of 3" in lines and "  post: 3" in lines
    assert "  comment: 2 of 2" not in lines and "  comment: 2" in lines
    assert not any(line.startswith("  user:") and " of " in line for line in lines)


def test_the_password_of_a_url_is_never_shown(app, postgresql_databases):
    name, url = postgresql_databases.create()
    try:
        # The throwaway cluster trusts its socket: any password is let in.
        with_password = url.replace("postgres@", "postgres:s3cret@", 1)
        code, output = copy(app, with_password)
        assert code == 0 and "s3cret" not in output
        assert "postgresql://postgres:***@/" in output.splitlines()[-1]
    finally:
        postgresql_databases.drop(name)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://me:pa:ss@db.example/site", "postgresql://me:***@db.example/site"),
        ("postgresql://me@db.example/site", "postgresql://me@db.example/site"),
        (
            "postgresql:///site?user=me&password=pass&x=1",
            "postgresql:///site?user=me&password=***&x=1",
        ),
        ("/srv/flaskr:old/site.sqlite", "/srv/flaskr:old/site.sqlite"),
    ],
)
def test_hide_password(url, shown):
    assert copydb.hide_password(url) == shown


def test_the_copy_runs_in_parents_first_order(app):
    with app.app_context():
        tables = copydb.site_tables(get_db())
    assert tables.index("user") < tables.index("post") < tables.index("comment")
    assert tables.index("tag") < tables.index("post_tag")
    assert not set(BOOKKEEPING) & set(tables)
