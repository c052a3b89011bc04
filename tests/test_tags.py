import pytest
from listing import add_posts, assert_twelve_posts_paginate, titles

from flaskr.db import get_db
from flaskr.forms import TAG_MAX, TAGS_MAX
from flaskr.tags import parse_tags, save_tags


def post_tags(query, post_id):
    rows = query(
        "SELECT t.name FROM post_tag pt JOIN tag t ON t.id = pt.tag_id"
        " WHERE pt.post_id = ? ORDER BY t.name",
        (post_id,),
    )
    return [name for (name,) in rows]


def all_tags(query):
    return [name for (name,) in query("SELECT name FROM tag ORDER BY name")]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", []),
        ("  ", []),
        ("python", ["python"]),
        (" Python , Web  Dev,python,PYTHON, ", ["python", "web dev"]),
        (",,a,,b,", ["a", "b"]),
        ("v1.2, c_d, e-f, Ünïcode, 日本", ["v1.2", "c_d", "e-f", "ünïcode", "日本"]),
        ("x" * TAG_MAX, ["x" * TAG_MAX]),
        (",".join(str(n) for n in range(TAGS_MAX)), [str(n) for n in range(TAGS_MAX)]),
        (",".join(["same"] * 50), ["same"]),
    ],
)
def test_parse_tags(text, names):
    assert parse_tags(text) == (names, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (",".join(f"t{n}" for n in range(TAGS_MAX + 1)), "at most 10 tags"),
        ("x" * (TAG_MAX + 1), "at most 32 characters"),
        ("a/b", "Tag 'a/b' is not allowed"),
        ("<script>", "is not allowed"),
        ("..", "is not allowed"),
        ("-rf", "is not allowed"),
        ("_hidden", "is not allowed"),
        ("nul\x00byte", "is not allowed"),
        ("tab\x01", "is not allowed"),
        ('quote"', "is not allowed"),
    ],
)
def test_parse_tags_refuses(text, message):
    names, error = parse_tags(text)
    assert names == []
    assert message in error


def test_create_with_tags_links_them_everywhere(client, auth, app, query):
    auth.login()
    response = client.post(
        "/create",
        data={
            "title": "Tagged",
            "body": "**Markdown** <b>raw</b> [bad](javascript:alert(1))",
            "tags": "Python, Web Dev",
        },
    )
    assert response.headers["Location"] == "/"
    assert post_tags(query, 2) == ["python", "web dev"]

    for path in ("/", "/2/tagged"):
        page = client.get(path).data
        assert b'<a href="/tag/python" rel="tag">python</a>' in page
        assert b'<a href="/tag/web%20dev" rel="tag">web dev</a>' in page

    # The acceptance: Markdown rendered, raw tag shown as text, unsafe link dropped.
    detail = client.get("/2/tagged").data
    assert b"<strong>Markdown</strong> &lt;b&gt;raw&lt;/b&gt; [bad](javascript:alert(1))" in detail
    assert b'href="javascript:' not in detail

    for path in ("/tag/python", "/tag/PYTHON", "/tag/web%20dev", "/tag/Web%20%20Dev"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert b'<a href="/2/tagged">Tagged</a>' in page.data
        assert b"test title" not in page.data


def test_unknown_tag_is_404(client):
    response = client.get("/tag/nothing")
    assert response.status_code == 404
    assert b"No post is tagged &#39;nothing&#39;." in response.data


def test_update_form_shows_and_replaces_tags(client, auth, app, query):
    auth.login()
    client.post("/1/update", data={"title": "t", "body": "b", "tags": "one, two"})
    assert post_tags(query, 1) == ["one", "two"]
    assert b'value="one, two"' in client.get("/1/update").data

    client.post("/1/update", data={"title": "t", "body": "b", "tags": "two, three"})
    assert post_tags(query, 1) == ["three", "two"]
    # A tag no post has any more is gone, and so is its page.
    assert all_tags(query) == ["three", "two"]
    assert client.get("/tag/one").status_code == 404

    client.post("/1/update", data={"title": "t", "body": "b"})
    assert post_tags(query, 1) == []
    assert all_tags(query) == []


@pytest.mark.parametrize("path", ("/create", "/1/update"))
def test_invalid_tags_write_nothing(client, auth, app, path, query):
    auth.login()
    client.post("/1/update", data={"title": "test title", "body": "test\nbody", "tags": "kept"})
    with app.app_context():
        before = get_db().execute("SELECT id, title, body, updated FROM post").fetchall()

    tags = ",".join(f"t{n}" for n in range(11))
    response = client.post(path, data={"title": "changed", "body": "changed", "tags": tags})
    assert response.status_code == 400
    assert b"A post can have at most 10 tags." in response.data
    assert b'value="changed"' in response.data  # the form keeps what was typed

    with app.app_context():
        after = get_db().execute("SELECT id, title, body, updated FROM post").fetchall()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    assert post_tags(query, 1) == ["kept"]
    assert all_tags(query) == ["kept"]


def test_deleting_a_post_removes_its_tag_links(client, auth, app, count, query):
    auth.login()
    client.post("/create", data={"title": "other", "body": "", "tags": "shared"})
    client.post("/1/update", data={"title": "t", "body": "", "tags": "shared, own"})
    assert count("post_tag") == 3

    client.post("/1/delete")
    assert count("post_tag") == 1
    assert all_tags(query) == ["shared"]
    assert client.get("/tag/own").status_code == 404
    assert b'<a href="/2/other">other</a>' in client.get("/tag/shared").data


def test_tag_pages_are_paginated_newest_first(app, client):
    add_posts(app, 11)
    with app.app_context():
        db = get_db()
        for post_id in range(1, 13):
            save_tags(db, post_id, ["many"])
        save_tags(db, 1, ["many", "few"])

    assert_twelve_posts_paginate(client, "/tag/many")
    assert titles(client.get("/tag/few").data) == ["test title"]


def test_tag_pages_follow_a_changed_created_time(app, client):
    with app.app_context():
        db = get_db()
        db.execute(
            "INSERT INTO post (title, body, author_id, created)"
            " VALUES ('later', '', 1, '2019-01-01 00:00:00')"
        )
        save_tags(db, 1, ["t"])
        save_tags(db, 2, ["t"])
        db.execute("UPDATE post SET created = '2020-01-01 00:00:00' WHERE id = 1")
        created = db.execute("SELECT created FROM post_tag WHERE post_id = 1").fetchone()[0]
    assert str(created) == "2020-01-01 00:00:00"

    assert titles(client.get("/tag/t").data) == ["test title", "later"]
