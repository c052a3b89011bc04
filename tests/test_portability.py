"""Export of a whole site to a zip file and import into an empty database."""

import io
import json
import os
import sqlite3
import zipfile

import pytest
from images import image_bytes, stored_names
from live import FAST_HASH
from markup import live_markup
from werkzeug.security import generate_password_hash

from flaskr import portability
from flaskr.db import connect, get_db, init_db, migrations, split_statements, transaction


def fill_site(app, client, auth):
    """Give the test site an image, tags, a comment and a like, through the real views."""
    auth.login()
    client.post(
        "/create",
        data={
            "title": "with image",
            "body": "see *this*",
            "tags": "Garden, Tomatoes",
            "image": (io.BytesIO(image_bytes("PNG")), "a.png", "image/png"),
        },
        content_type="multipart/form-data",
    )
    client.post("/1/update", data={"title": "test title", "body": "test\nbody", "tags": "garden"})
    client.post("/2/comment", data={"body": "first!"})
    client.post("/1/like")
    auth.logout()
    auth.login("other", "other")
    client.post("/2/like")
    auth.logout()


def run(app, *args):
    """Run a command of the app; return (exit code, output)."""
    result = app.test_cli_runner().invoke(args=list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def read_zip(path):
    """Return {name: bytes} of a zip file's entries."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path, site=None, entries=()):
    """Write an export-shaped zip: site.json (unless None) and other (name, bytes) entries."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        if site is not None:
            archive.writestr("site.json", json.dumps(site))
        for name, data in entries:
            archive.writestr(name, data)
    return path


@pytest.fixture
def empty_app(make_app, tmp_path, backend, request):
    """A second instance with its own (not yet created) database, on the test's backend."""
    if backend == "sqlite":
        return make_app(DATABASE=str(tmp_path / "new.sqlite"))
    databases = request.getfixturevalue("postgresql_databases")
    name, url = databases.create()
    request.addfinalizer(lambda: databases.drop(name))
    return make_app(DATABASE=url)


@pytest.fixture
def exported(app, client, auth, tmp_path):
    """The filled test site exported; returns the zip's path."""
    fill_site(app, client, auth)
    path = tmp_path / "site.zip"
    code, output = run(app, "export", str(path))
    assert code == 0, output
    return path


def minimal_site(**tables):
    """A valid site.json with one user and one post; tables given replace the defaults."""
    site = {
        "format": "flaskr-site",
        "version": 1,
        "users": [{"id": 1, "username": "ann", "password": "pbkdf2:sha256:1$salt$hash"}],
        "tags": [],
        "posts": [
            {
                "id": 1,
                "author_id": 1,
                "title": "hello",
                "body": "",
                "state": "published",
                "created": "2024-01-01 10:00:00",
                "updated": None,
                "image": None,
            }
        ],
        "post_tags": [],
        "comments": [],
        "likes": [],
        "imported": [],
    }
    site.update(tables)
    return site


def test_export_writes_every_table_and_a_markdown_file_per_post(exported, query):
    entries = read_zip(exported)
    site = json.loads(entries["site.json"])
    users = [(u["id"], u["username"], u["password"]) for u in site["users"]]
    assert users == query("SELECT id, username, password FROM user ORDER BY id")
    assert [name for _, name, _ in users] == ["test", "other"]
    first, second = site["posts"]
    assert first["created"] == "2018-01-01 00:00:00"
    assert first["updated"] is not None
    assert first["state"] == second["state"] == "published"
    assert first["image"] is None
    assert second["image"] == "images/2.png"
    assert [t["name"] for t in site["tags"]] == ["garden", "tomatoes"]
    assert len(site["post_tags"]) == 3
    assert [(c["post_id"], c["author_id"], c["body"]) for c in site["comments"]] == [
        (2, 1, "first!")
    ]
    assert {(like["post_id"], like["user_id"]) for like in site["likes"]} == {(1, 1), (2, 2)}
    # Security bookkeeping stays with the running site.
    assert not {"user_session", "sessions", "login_failure"} & set(site)
    assert entries["images/2.png"].startswith(b"\x89PNG")
    markdown = entries["posts/2-with-image.md"].decode()
    assert markdown.startswith('---\nid: 2\ntitle: "with image"\nauthor: "test"\n')
    assert 'state: "published"\n' in markdown
    assert 'tags: ["garden", "tomatoes"]\n' in markdown
    assert markdown.endswith("---\n\nsee *this*")
    assert "posts/1-test-title.md" in entries


def test_export_tells_to_keep_the_file_private(app, tmp_path):
    code, output = run(app, "export", str(tmp_path / "site.zip"))
    assert code == 0
    assert "Exported 2 users, 1 posts, 0 comments and 0 likes" in output
    assert "keep it private" in output


def test_export_never_holds_the_generated_signing_key(app, tmp_path, query):
    key = "the site's generated key, 64 characters in real life"
    query("INSERT INTO signing_key (id, value) VALUES (1, ?)", (key,))
    assert run(app, "export", str(tmp_path / "site.zip"))[0] == 0
    with zipfile.ZipFile(tmp_path / "site.zip") as archive:
        assert not [n for n in archive.namelist() if key.encode() in archive.read(n)]


def test_export_refuses_an_existing_file(app, tmp_path):
    path = tmp_path / "site.zip"
    path.write_bytes(b"precious")
    code, output = run(app, "export", str(path))
    assert code == 1
    assert output == f"Error: {path} already exists; choose a new file name.\n"
    assert path.read_bytes() == b"precious"


def test_export_to_a_missing_folder_fails_cleanly(app, tmp_path):
    code, output = run(app, "export", str(tmp_path / "nowhere" / "site.zip"))
    assert code == 1
    assert output.startswith("Error: Cannot write ")
    assert output.count("\n") == 1


def test_a_failed_export_leaves_no_partial_file(app, tmp_path, monkeypatch):
    def broken(archive, site):
        raise RuntimeError("disk trouble")

    monkeypatch.setattr(portability, "write_archive", broken)
    path = tmp_path / "site.zip"
    with pytest.raises(RuntimeError), app.app_context():
        portability.export_site(str(path))
    assert not [name for name in os.listdir(tmp_path) if name.startswith("site.zip")]


def test_export_needs_an_initialised_database(empty_app, tmp_path):
    code, output = run(empty_app, "export", str(tmp_path / "site.zip"))
    assert code == 1
    assert "run 'flask --app flaskr init-db' first" in output
    assert not (tmp_path / "site.zip").exists()


def test_export_leaves_out_an_image_that_is_gone(app, client, auth, tmp_path, query):
    fill_site(app, client, auth)
    query("DELETE FROM image")
    code, output = run(app, "export", str(tmp_path / "site.zip"))
    assert code == 0
    assert "1 posts' images were missing" in output
    entries = read_zip(tmp_path / "site.zip")
    assert json.loads(entries["site.json"])["posts"][1]["image"] is None
    assert not [name for name in entries if name.startswith("images/")]


def test_round_trip_gives_the_same_content(exported, empty_app, tmp_path):
    code, output = run(empty_app, "import", str(exported))
    assert code == 0, output
    assert output == f"Imported 2 users, 2 posts, 1 comments and 2 likes from {exported}.\n"
    again = tmp_path / "again.zip"
    assert run(empty_app, "export", str(again))[0] == 0
    first, second = read_zip(exported), read_zip(again)
    assert set(first) == set(second)
    for name in first:
        if not name.startswith("images/"):
            assert first[name] == second[name], name


def test_imported_site_works_as_before(exported, empty_app):
    run(empty_app, "import", str(exported))
    client = empty_app.test_client()
    # Password hashes came along: the old password logs in.
    response = client.post("/auth/login", data={"username": "test", "password": "test"})
    assert response.headers["Location"] == "/"
    page = client.get("/2", follow_redirects=True).data.decode()
    assert "with image" in page and "first!" in page and "1 like" in page
    assert 'href="/tag/tomatoes"' in page
    (name,) = stored_names(empty_app)
    assert f'/uploads/{name}"' in page
    with client.get(f"/uploads/{name}") as response:
        assert response.data.startswith(b"\x89PNG")
    assert b"test title" in client.get("/search?q=body").data
    # New rows continue after the imported ids.
    client.post("/create", data={"title": "third", "body": ""})
    with empty_app.app_context():
        assert get_db().execute("SELECT MAX(id) FROM post").fetchone()[0] == 3


def test_import_refuses_a_database_that_is_not_empty(exported, app, snapshot):
    before = snapshot()
    code, output = run(app, "import", str(exported))
    assert code == 1
    assert output == (
        "Error: Cannot import: the database is not empty;"
        " import loads a site into a new one only.\n"
    )
    assert snapshot() == before


def test_import_re_encodes_images(empty_app, tmp_path):
    png = image_bytes("PNG") + b"<script>alert(1)</script>"
    post = {**minimal_site()["posts"][0], "image": "images/1.png"}
    path = write_zip(tmp_path / "x.zip", minimal_site(posts=[post]), [("images/1.png", png)])
    assert run(empty_app, "import", str(path))[0] == 0
    (name,) = stored_names(empty_app)
    with empty_app.test_client().get(f"/uploads/{name}") as response:
        stored = response.get_data()
    assert stored.startswith(b"\x89PNG") and b"<script>" not in stored


def test_import_normalises_times_to_utc(empty_app, tmp_path, query):
    post = {**minimal_site()["posts"][0], "created": "2024-01-01T12:00:00+02:00"}
    path = write_zip(tmp_path / "x.zip", minimal_site(posts=[post]))
    assert run(empty_app, "import", str(path))[0] == 0
    with empty_app.app_context():
        row = get_db().execute("SELECT CAST(created AS TEXT) FROM post").fetchone()
    assert row[0] == "2024-01-01 10:00:00"


def test_imported_hostile_content_never_runs(empty_app, tmp_path):
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>[x](javascript:alert(3))"
    site = minimal_site(
        users=[{"id": 1, "username": "ann", "password": "!"}],
        comments=[
            {
                "id": 1,
                "post_id": 1,
                "author_id": None,
                "author_name": "<script>alert(4)</script>",
                "created": "2024-01-02 00:00:00",
                "body": hostile,
            }
        ],
    )
    site["posts"][0].update(title="<script>alert(5)</script>", body=hostile)
    assert run(empty_app, "import", str(write_zip(tmp_path / "x.zip", site)))[0] == 0
    client = empty_app.test_client()
    for path in ("/", "/1", "/user/ann", "/feed.atom"):
        page = client.get(path).data
        assert live_markup(page) == [], path
    assert (
        b"&lt;script&gt;alert(4)&lt;/script&gt; (guest)"
        in client.get("/1", follow_redirects=True).data
    )


def test_an_image_that_fails_stores_no_image(empty_app, tmp_path):
    first = {**minimal_site()["posts"][0], "image": "images/1.png"}
    second = {**first, "id": 2, "image": "images/2.gif"}
    entries = [("images/1.png", image_bytes("PNG")), ("images/2.gif", b"GIF89a not really")]
    path = write_zip(tmp_path / "x.zip", minimal_site(posts=[first, second]), entries)
    code, output = run(empty_app, "import", str(path))
    assert code == 1
    assert output == "Error: Cannot import: images/2.gif is not an image Flaskr accepts.\n"
    with empty_app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM post").fetchone()[0] == 0
    assert stored_names(empty_app) == []


def post_with(**fields):
    return [{**minimal_site()["posts"][0], **fields}]


COMMENT = {
    "id": 1,
    "post_id": 1,
    "author_id": 1,
    "author_name": None,
    "created": "2024-01-02 00:00:00",
    "body": "hi",
}
LIKE = {"post_id": 1, "user_id": 1, "created": "2024-01-02 00:00:00"}
USER = minimal_site()["users"][0]


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ([], "site.json is not a Flaskr site export"),
        ({"format": "other"}, "site.json is not a Flaskr site export"),
        (minimal_site(version=2), "site.json is format version 2; this Flaskr reads 1"),
        (minimal_site(users=None), "site.json has no list of users"),
        (minimal_site(users=[{"id": 1}]), "users[0] must have exactly the fields id, username"),
        (minimal_site(users=[{**USER, "id": True}]), "users[0].id must be a positive integer"),
        (minimal_site(users=[{**USER, "id": 0}]), "users[0].id must be a positive integer"),
        (minimal_site(users=[USER, USER]), "users[1] repeats id 1"),
        (
            minimal_site(users=[USER, {**USER, "id": 2, "username": "ANN"}]),
            "users[1].username 'ANN' is taken by an earlier user",
        ),
        (
            minimal_site(users=[{**USER, "username": "a b"}]),
            "users[0].username must be 1 to 32 letters",
        ),
        (minimal_site(users=[{**USER, "password": ""}]), "users[0].password must not be empty"),
        (
            minimal_site(users=[{**USER, "password": "x" * 1025}]),
            "users[0].password must be at most 1024 characters",
        ),
        (minimal_site(users=["ann"]), "users[0] must have exactly the fields id, username"),
        (minimal_site(users=[{**USER, "role": "owner"}]), "users[0].role must be one of admin"),
        (minimal_site(users=[{**USER, "joined": "then"}]), "users[0].joined must be a time"),
        (
            minimal_site(users=[{**USER, "display_name": "d" * 65}]),
            "users[0].display_name must be at most 64 characters",
        ),
        (minimal_site(users=[{**USER, "bio": 5}]), "users[0].bio must be text"),
        (
            minimal_site(site_settings=[{"name": "secret_key", "value": "x"}]),
            "site_settings[0].name 'secret_key' is not a site setting",
        ),
        (
            minimal_site(site_settings=[{"name": "title", "value": "a"}] * 2),
            "site_settings[1].name 'title' is not a site setting, or repeats one",
        ),
        (minimal_site(tags=[{"id": 1, "name": "Big"}]), "tags[0].name 'Big' is not a tag name"),
        (minimal_site(tags=[{"id": 1, "name": "-x"}]), "tags[0].name '-x' is not a tag name"),
        (
            minimal_site(tags=[{"id": 1, "name": "x" * 33}]),
            "tags[0].name must be at most 32 characters",
        ),
        (
            minimal_site(tags=[{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]),
            "tags[1].name 'a' is taken by an earlier tag",
        ),
        (minimal_site(posts=post_with(author_id=9)), "posts[0].author_id names no row (9)"),
        (minimal_site(posts=post_with(title="")), "posts[0].title must not be empty"),
        (minimal_site(posts=post_with(title=7)), "posts[0].title must be text"),
        (minimal_site(posts=[7]), "posts[0] must have exactly the fields id, author_id, title"),
        (
            minimal_site(posts=post_with(image_alt="x" * 1001)),
            "posts[0].image_alt must be at most 1000 characters",
        ),
        (
            minimal_site(posts=post_with(title="t" * 201)),
            "posts[0].title must be at most 200 characters",
        ),
        (
            minimal_site(posts=post_with(body="b" * 100_001)),
            "posts[0].body must be at most 100000 characters",
        ),
        (
            minimal_site(posts=post_with(body="a\x00b")),
            "posts[0].body must not contain NUL characters",
        ),
        (
            minimal_site(posts=post_with(state="hidden")),
            "posts[0].state must be one of published, draft, scheduled",
        ),
        (
            minimal_site(posts=post_with(created="yesterday")),
            "posts[0].created must be a time like",
        ),
        (minimal_site(posts=post_with(created=None)), "posts[0].created must be a time like"),
        (minimal_site(posts=post_with(updated=5)), "posts[0].updated must be a time like"),
        (
            minimal_site(posts=post_with(image="../../etc/passwd")),
            "posts[0].image must be null or images/1.<png|jpg|gif|webp>",
        ),
        (
            minimal_site(posts=post_with(image="images/2.png")),
            "posts[0].image must be null or images/1.",
        ),
        (
            minimal_site(posts=post_with(image="images/1.png")),
            "posts[0].image images/1.png is not in the archive",
        ),
        (
            minimal_site(post_tags=[{"post_id": 1, "tag_id": 1}]),
            "post_tags[0].tag_id names no row (1)",
        ),
        (
            minimal_site(
                tags=[{"id": 1, "name": "a"}],
                post_tags=[{"post_id": 1, "tag_id": 1}, {"post_id": 1, "tag_id": 1}],
            ),
            "post_tags[1] repeats an earlier row",
        ),
        (
            minimal_site(
                tags=[{"id": k, "name": f"t{k}"} for k in range(1, 12)],
                post_tags=[{"post_id": 1, "tag_id": k} for k in range(1, 12)],
            ),
            "post 1 has more than 10 tags",
        ),
        (minimal_site(comments=[{**COMMENT, "post_id": 3}]), "comments[0].post_id names no row"),
        (
            minimal_site(comments=[{**COMMENT, "author_id": 5}]),
            "comments[0].author_id names no row (5)",
        ),
        (
            minimal_site(comments=[{**COMMENT, "author_id": None}]),
            "comments[0] needs an author_id or an author_name",
        ),
        (
            minimal_site(comments=[{**COMMENT, "author_id": None, "author_name": "n" * 101}]),
            "comments[0].author_name must be at most 100 characters",
        ),
        (minimal_site(comments=[{**COMMENT, "body": "  "}]), "comments[0].body must not be blank"),
        (
            minimal_site(comments=[{**COMMENT, "body": "c" * 5001}]),
            "comments[0].body must be at most 5000 characters",
        ),
        (minimal_site(comments=[{**COMMENT, "created": ""}]), "comments[0].created must be a time"),
        (minimal_site(likes=[LIKE, LIKE]), "likes[1] repeats an earlier row"),
        (minimal_site(likes=[{**LIKE, "user_id": 2}]), "likes[0].user_id names no row (2)"),
        (minimal_site(likes=[{**LIKE, "created": "soon"}]), "likes[0].created must be a time"),
        (
            minimal_site(imported=[{"source": "s", "kind": "k", "key": "", "row_id": 1}]),
            "imported[0].key must not be empty",
        ),
        (
            minimal_site(imported=[{"source": "s", "kind": "k", "key": "1", "row_id": -1}]),
            "imported[0].row_id must be a positive integer",
        ),
        (
            minimal_site(imported=[{"source": "s", "kind": "k", "key": "1", "row_id": 1}] * 2),
            "imported[1] repeats an earlier row",
        ),
    ],
)
def test_import_refuses_invalid_content_and_writes_nothing(empty_app, tmp_path, site, message):
    path = write_zip(tmp_path / "x.zip", site)
    code, output = run(empty_app, "import", str(path))
    assert code == 1
    assert output.startswith(f"Error: Cannot import: {message}")
    assert output.count("\n") == 1
    assert not os.path.exists(empty_app.config["DATABASE"])


def test_imported_comments_keep_a_guest_name_and_valid_rows_all_load(empty_app, tmp_path):
    guest = {**COMMENT, "id": 2, "author_id": None, "author_name": "Jane"}
    site = minimal_site(
        tags=[{"id": 4, "name": "a b"}],
        post_tags=[{"post_id": 1, "tag_id": 4}],
        comments=[COMMENT, guest],
        likes=[LIKE],
        imported=[{"source": "wordpress", "kind": "post", "key": "g", "row_id": 1}],
    )
    assert run(empty_app, "import", str(write_zip(tmp_path / "x.zip", site)))[0] == 0
    page = empty_app.test_client().get("/1", follow_redirects=True).data.decode()
    assert "Jane (guest) on 2024-01-02" in page
    assert "ann on 2024-01-02" in page
    assert 'href="/tag/a%20b"' in page


def zip_with_damaged_site_json(path):
    write_zip(path, minimal_site())
    data = bytearray(path.read_bytes())
    start = data.index(b"site.json") + len(b"site.json")
    data[start + 5 : start + 25] = b"\xff" * 20  # inside the compressed bytes
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path, "there is no file"),
        (lambda path: path.write_bytes(b"not a zip") and path, "is not a zip file"),
        (lambda path: write_zip(path), "the archive has no site.json"),
        (
            lambda path: write_zip(path, entries=[("site.json", b"{")]),
            "site.json is not valid JSON (Expecting property name",
        ),
        (
            lambda path: write_zip(path, entries=[("site.json", b"\xff\xfe")]),
            "site.json is not UTF-8 text",
        ),
        (
            lambda path: write_zip(path, entries=[("site.json", b"[" * 100_000)]),
            "site.json is nested too deeply",
        ),
        (
            lambda path: write_zip(path, minimal_site(), [("../evil.sh", b"x")]),
            "the archive has an unsafe entry name '../evil.sh'",
        ),
        (
            lambda path: write_zip(path, minimal_site(), [("/etc/cron.d/x", b"x")]),
            "the archive has an unsafe entry name '/etc/cron.d/x'",
        ),
        (
            lambda path: write_zip(path, minimal_site(), [("images\\..\\x", b"x")]),
            "unsafe entry name",
        ),
        (
            lambda path: write_zip(path, minimal_site(), [("C:/x", b"x")]),
            "unsafe entry name",
        ),
        (zip_with_damaged_site_json, "site.json in the archive is damaged"),
    ],
)
def test_import_refuses_a_file_that_is_not_a_sound_export(empty_app, tmp_path, make, message):
    path = tmp_path / "x.zip"
    make(path)
    code, output = run(empty_app, "import", str(path))
    assert code == 1
    assert message in output and output.startswith("Error: Cannot import: ")
    assert output.count("\n") == 1
    assert not os.path.exists(empty_app.config["DATABASE"])


def test_import_refuses_a_folder(empty_app, tmp_path):
    code, output = run(empty_app, "import", str(tmp_path))
    assert code == 1
    assert "cannot be read" in output


@pytest.mark.parametrize(
    ("limit", "value", "message"),
    [
        ("MAX_ENTRIES", 2, "the archive has more than 2 entries"),
        ("MAX_TOTAL_BYTES", 700, "the archive would unpack to more than 700 bytes"),
        ("MAX_JSON_BYTES", 100, "site.json is larger than 100 bytes"),
    ],
)
def test_import_refuses_an_archive_past_its_limits(
    empty_app, tmp_path, monkeypatch, limit, value, message
):
    monkeypatch.setattr(portability, limit, value)
    path = write_zip(tmp_path / "x.zip", minimal_site(), [("a", b"0" * 600), ("b", b"0")])
    code, output = run(empty_app, "import", str(path))
    assert code == 1
    assert output == f"Error: Cannot import: {message}.\n"


def test_an_entry_bigger_than_it_claims_is_refused_as_damaged(empty_app, tmp_path):
    # A zip bomb can declare a small size; no more than that is ever unpacked.
    path = write_zip(tmp_path / "x.zip", minimal_site())
    data = bytearray(path.read_bytes())
    size = len(json.dumps(minimal_site())).to_bytes(4, "little")
    # The local header and the central directory both carry the size.
    assert data.count(size) == 2
    path.write_bytes(bytes(data).replace(size, (10).to_bytes(4, "little")))
    code, output = run(empty_app, "import", str(path))
    assert code == 1
    assert output.startswith("Error: Cannot import: site.json in the archive is damaged")


def test_upgrading_keeps_comments_their_ids_and_counter(make_app, tmp_path):
    # Migration 0007 rebuilds the comment table so that a comment can have no account.
    path = tmp_path / "old.sqlite"
    db = connect(str(path))
    for number, _, sql in migrations():
        if number < 7:
            for statement in split_statements(sql):
                db.execute(statement)
    db.execute("PRAGMA user_version = 6")
    db.execute("INSERT INTO user (username, password) VALUES ('ann', 'x')")
    db.execute("INSERT INTO post (title, body, author_id) VALUES ('t', '', 1)")
    db.executemany(
        "INSERT INTO comment (id, post_id, author_id, body, created) VALUES (?, 1, 1, ?, ?)",
        [
            (1, "one", "2024-01-01 00:00:00"),
            (2, "two", "2024-01-02 00:00:00"),
            (5, "gone", "2024-01-03 00:00:00"),
        ],
    )
    db.execute("DELETE FROM comment WHERE id = 5")
    db.close()
    app = make_app(DATABASE=str(path))
    with app.app_context():
        init_db()
        db = get_db()
        rows = db.execute("SELECT id, author_id, author_name, body FROM comment ORDER BY id")
        assert [tuple(row) for row in rows] == [(1, 1, None, "one"), (2, 1, None, "two")]
        # AUTOINCREMENT still never reuses the id of a deleted comment.
        new = db.execute("INSERT INTO comment (post_id, author_id, body) VALUES (1, 1, 'x')")
        assert new.lastrowid == 6
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO comment (post_id, body) VALUES (1, 'no author at all')")


def test_export_reads_everything_in_one_read_transaction(app, tmp_path, monkeypatch):
    seen = []
    write_archive = portability.write_archive

    def watching(archive, site):
        seen.append(get_db().in_transaction)
        write_archive(archive, site)

    monkeypatch.setattr(portability, "write_archive", watching)
    assert run(app, "export", str(tmp_path / "site.zip"))[0] == 0
    assert seen == [True]


def test_a_guest_comment_can_be_deleted_by_the_post_author(empty_app, tmp_path):
    site = minimal_site(
        users=[{**USER, "password": generate_password_hash("long enough", method=FAST_HASH)}],
        comments=[{**COMMENT, "author_id": None, "author_name": "Jane"}],
    )
    assert run(empty_app, "import", str(write_zip(tmp_path / "x.zip", site)))[0] == 0
    client = empty_app.test_client()
    client.post("/auth/login", data={"username": "ann", "password": "long enough"})
    assert client.post("/comment/1/delete").status_code == 302
    assert b"Jane" not in client.get("/1", follow_redirects=True).data


def test_drafts_and_scheduled_posts_keep_their_state(app, empty_app, tmp_path, query):
    with app.app_context(), transaction() as db:
        db.execute(
            "INSERT INTO post (title, body, author_id, draft, image_alt)"
            " VALUES ('draft', '', 1, 1, 'an owl')"
        )
        db.execute(
            "INSERT INTO post (title, body, author_id, created)"
            " VALUES ('later', '', 1, '2999-01-01 00:00:00')"
        )
    path = tmp_path / "site.zip"
    assert run(app, "export", str(path))[0] == 0
    posts = json.loads(read_zip(path)["site.json"])["posts"]
    assert [p["state"] for p in posts] == ["published", "draft", "scheduled"]
    assert run(empty_app, "import", str(path))[0] == 0
    with empty_app.app_context():
        rows = get_db().execute("SELECT title, draft, image_alt FROM post ORDER BY id").fetchall()
    assert [tuple(row) for row in rows] == [
        ("test title", 0, ""),
        ("draft", 1, "an owl"),
        ("later", 0, ""),
    ]
    index = empty_app.test_client().get("/").data
    assert b"test title" in index and b"draft" not in index and b"later" not in index


def test_accounts_and_site_settings_travel_with_the_site(app, runner, empty_app, tmp_path):
    runner.invoke(args=["set-role", "test", "admin"])
    with app.app_context():
        db = get_db()
        db.execute("UPDATE user SET display_name = 'Tess', bio = 'Hi.' WHERE id = 1")
        db.execute("UPDATE user SET suspended = joined WHERE id = 2")
        db.execute("INSERT INTO site_setting (name, value) VALUES ('title', 'Owl Notes')")
    path = tmp_path / "site.zip"
    run(app, "export", str(path))
    site = json.loads(read_zip(path)["site.json"])
    assert site["site_settings"] == [{"name": "title", "value": "Owl Notes"}]
    assert (site["users"][0]["role"], site["users"][0]["display_name"]) == ("admin", "Tess")
    assert run(empty_app, "import", str(path))[0] == 0
    with empty_app.app_context():
        rows = get_db().execute("SELECT role, display_name, bio, suspended IS NOT NULL FROM user")
        assert [tuple(row) for row in rows] == [("admin", "Tess", "Hi.", 0), ("author", "", "", 1)]
    assert b"Owl Notes" in empty_app.test_client().get("/").data


def test_an_export_from_before_accounts_still_imports(empty_app, tmp_path):
    path = write_zip(tmp_path / "old.zip", minimal_site())
    assert run(empty_app, "import", str(path))[0] == 0
    with empty_app.app_context():
        row = get_db().execute("SELECT role, display_name, joined FROM user").fetchone()
    assert (row["role"], row["display_name"]) == ("author", "")
    assert row["joined"] is not None
