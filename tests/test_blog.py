import io
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from images import image_bytes, stored_names
from listing import add_posts, assert_twelve_posts_paginate, titles

from flaskr import blog
from flaskr.db import get_db, transaction
from flaskr.tags import save_tags


def test_index(client, auth):
    response = client.get("/")
    assert b"Log In" in response.data
    assert b"Register" in response.data

    auth.login()
    response = client.get("/")
    assert b"Log Out" in response.data
    assert b"test title" in response.data
    assert b"by test on 2018-01-01" in response.data
    assert b"test\nbody" in response.data
    assert b'href="/1/update"' in response.data


def test_empty_index(app, client):
    with app.app_context():
        get_db().execute("DELETE FROM post")
    assert b"No posts yet." in client.get("/").data


@pytest.mark.parametrize("path", ("/create", "/1/update", "/1/delete"))
def test_login_required(client, path):
    response = client.post(path)
    assert response.headers["Location"] == "/auth/login"


def test_author_required(app, client, auth):
    with app.app_context():
        db = get_db()
        db.execute("UPDATE post SET author_id = 2 WHERE id = 1")
        db.commit()

    auth.login()
    assert client.post("/1/update").status_code == 403
    assert client.post("/1/delete").status_code == 403
    assert client.get("/1/update").status_code == 403
    assert b'href="/1/update"' not in client.get("/").data


@pytest.mark.parametrize("path", ("/2/update", "/2/delete"))
def test_exists_required(client, auth, path):
    auth.login()
    assert client.post(path).status_code == 404


def test_create(client, auth, count):
    auth.login()
    assert client.get("/create").status_code == 200
    response = client.post("/create", data={"title": "created", "body": ""})
    assert response.headers["Location"] == "/"
    assert count("post") == 2
    page = client.get("/").data
    assert page.index(b"created") < page.index(b"test title")


def test_update(client, auth, app):
    auth.login()
    form = client.get("/1/update").data
    assert b'value="test title"' in form
    assert b'data-confirm="Delete this post?' in form

    response = client.post("/1/update", data={"title": "updated", "body": "new body"})
    assert response.headers["Location"] == "/"
    with app.app_context():
        post = get_db().execute("SELECT * FROM post WHERE id = 1").fetchone()
        assert (post["title"], post["body"]) == ("updated", "new body")


@pytest.mark.parametrize("path", ("/create", "/1/update"))
def test_create_update_validate(client, auth, app, path):
    auth.login()
    response = client.post(path, data={"title": "", "body": "kept"})
    assert response.status_code == 400
    assert b"Title is required." in response.data
    assert b"kept" in response.data
    with app.app_context():
        rows = get_db().execute("SELECT title, body FROM post").fetchall()
    assert [tuple(r) for r in rows] == [("test title", "test\nbody")]


def test_delete(client, auth, app):
    auth.login()
    response = client.post("/1/delete")
    assert response.headers["Location"] == "/"

    with app.app_context():
        post = get_db().execute("SELECT * FROM post WHERE id = 1").fetchone()
        assert post is None


def test_delete_needs_post(client, auth):
    auth.login()
    assert client.get("/1/delete").status_code == 405


def test_index_pages_newest_first(app, client):
    add_posts(app, 11)  # 12 posts with the tutorial's
    assert_twelve_posts_paginate(client, "/")


def test_posts_per_page_is_configurable(make_app):
    app = make_app(POSTS_PER_PAGE=2)
    with app.app_context():
        from flaskr.db import init_db

        init_db()
    add_posts_for_new_user(app, 3)
    client = app.test_client()
    assert titles(client.get("/").data) == ["post 3", "post 2"]
    assert titles(client.get("/?page=2").data) == ["post 1"]


def add_posts_for_new_user(app, n):
    with app.app_context():
        get_db().execute("INSERT INTO user (username, password) VALUES ('u', 'x')")
    add_posts(app, n)


@pytest.mark.parametrize(
    "page", ["2", "0", "-1", "abc", "1.5", "99999999999999999999999", "", "\u0663", "00000001"]
)
def test_out_of_range_pages_are_404(client, page):
    response = client.get(f"/?page={page}")
    assert response.status_code == 404
    assert b"There is no such page." in response.data


@pytest.mark.parametrize("path", ["/", "/tag/python", "/user/test", "/search?q=test&"])
def test_a_page_number_of_thousands_of_digits_is_404(app, client, path):
    with app.app_context(), transaction() as db:
        save_tags(db, 1, ["python"])
    # Past 4,300 digits Python refuses to convert a string to int: that must not be a 500.
    separator = "" if path.endswith("&") else "?"
    response = client.get(f"{path}{separator}page={'9' * 5000}")
    assert response.status_code == 404
    assert b"There is no such page." in response.data


def test_same_second_posts_keep_a_stable_order(app, client):
    with app.app_context():
        get_db().executemany(
            "INSERT INTO post (title, body, author_id, created) VALUES (?, '', 1, ?)",
            [("older id", "2020-01-01 00:00:00"), ("newer id", "2020-01-01 00:00:00")],
        )
    assert titles(client.get("/").data)[:2] == ["newer id", "older id"]


def test_titles_link_to_their_post(client):
    assert b'<h2><a href="/1/test-title">test title</a></h2>' in client.get("/").data


def test_detail(client, auth):
    response = client.get("/1/test-title")
    assert response.status_code == 200
    assert b"<h1>test title</h1>" in response.data
    assert b"by test on 2018-01-01" in response.data
    assert b"<p>test\nbody</p>" in response.data
    assert b'href="/user/test"' in response.data
    assert b'href="/1/update"' not in response.data

    auth.login()
    assert b'href="/1/update"' in client.get("/1/test-title").data
    auth.logout()
    auth.login("other", "other")
    assert b'href="/1/update"' not in client.get("/1/test-title").data


@pytest.mark.parametrize(
    "path", ["/2", "/0", "/99999999999999999999999", "/99999999999999999999999/update"]
)
def test_detail_of_a_missing_post_is_404(client, auth, path):
    auth.login()
    assert client.get(path).status_code == 404


def test_update_records_the_edit_time(client, auth, app):
    auth.login()
    with app.app_context():
        assert get_db().execute("SELECT updated FROM post").fetchone()[0] is None
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    client.post("/1/update", data={"title": "t", "body": "b"})
    after = datetime.now(UTC).replace(tzinfo=None)
    with app.app_context():
        (updated,) = get_db().execute("SELECT updated FROM post").fetchone()
    # The time of the edit itself (UTC, to the second), not the post's creation.
    assert before <= updated <= after


def test_author_pages(app, client):
    add_posts(app, 11)  # by user 1, "test"
    with app.app_context():
        get_db().execute(
            "INSERT INTO post (title, body, author_id, created)"
            " VALUES ('by other', '', 2, '2020-01-01 00:00:00')"
        )
    first = client.get("/user/test")
    assert first.status_code == 200
    assert b"Posts by test" in first.data
    assert_twelve_posts_paginate(client, "/user/test")
    second = client.get("/user/TEST?page=2").data  # any case
    assert titles(second) == ["post 6", "post 5", "post 4", "post 3", "post 2"]
    assert b'href="/user/test?page=1"' in second and b'href="/user/test?page=3"' in second
    assert titles(client.get("/user/other").data) == ["by other"]


def test_author_without_posts(app, client):
    with app.app_context():
        get_db().execute("DELETE FROM post WHERE author_id = 2")
    response = client.get("/user/other")
    assert response.status_code == 200
    assert b"other has not written anything yet." in response.data


def test_unknown_author_is_404(client, query):
    response = client.get("/user/nobody")
    assert response.status_code == 404
    assert b"There is no user nobody." in response.data


def post_rows(query):
    return query("SELECT title, body FROM post")


@pytest.mark.parametrize("path", ("/create", "/1/update"))
@pytest.mark.parametrize(
    ("data", "message"),
    (
        ({"title": "x" * 201, "body": ""}, b"Title must be at most 200 characters."),
        ({"title": "t", "body": "x" * 100_001}, b"Body must be at most 100000 characters."),
        ({"title": "a\x00b", "body": ""}, b"Title must not contain NUL characters."),
        ({"title": "t", "body": "\x00"}, b"Body must not contain NUL characters."),
        (b"title=%FF%FE&body=x", b"Title must be valid UTF-8 text."),
        (b"title=ok&body=%C0%AF", b"Body must be valid UTF-8 text."),
        (b"title=\xff&body=x", b"Title must be valid UTF-8 text."),
    ),
)
def test_create_update_refuse_bad_fields(client, auth, app, path, data, message, query):
    auth.login()
    response = client.post(path, data=data, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert message in response.data
    assert b'class="flash"' in response.data
    assert post_rows(query) == [("test title", "test\nbody")]


def test_fields_at_their_limits_are_accepted(client, auth, app, query):
    auth.login()
    title, body = "t" * 200, "é" * 100_000
    assert client.post("/1/update", data={"title": title, "body": body}).status_code == 302
    assert post_rows(query) == [(title, body)]


def test_too_large_create_writes_nothing(make_app, app, count, query):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    client.post("/auth/login", data={"username": "test", "password": "test"})
    response = client.post("/create", data={"title": "big", "body": "x" * 4096})
    assert response.status_code == 413
    assert count("post") == 1


def image_upload(color):
    return (io.BytesIO(image_bytes(color=color)), "photo.png")


def stored_images(app):
    return stored_names(app)


def post_image(query):
    return query("SELECT image FROM post WHERE id = 1")[0][0]


@pytest.fixture
def overlapping(app, client, auth, monkeypatch):
    """Run another author's request in full just before this request's write transaction.

    That is how two overlapping requests interleave when the other one commits between
    this one's first read of the post and its write. Post 1 starts with an image.
    """
    auth.login()
    response = client.post("/1/update", data={"title": "t", "body": "", "image": image_upload(1)})
    assert response.status_code == 302
    other = app.test_client()
    other.post("/auth/login", data={"username": "test", "password": "test"})
    real_transaction = blog.transaction
    pending = []

    @contextmanager
    def transaction(db=None):
        while pending:
            pending.pop()(other)
        with real_transaction(db) as db:
            yield db

    monkeypatch.setattr(blog, "transaction", transaction)
    return pending.append


def replace_image(other):
    data = {"title": "t", "body": "", "image": image_upload(2)}
    assert other.post("/1/update", data=data).status_code == 302


def test_an_edit_never_brings_back_an_image_replaced_meanwhile(app, client, overlapping, query):
    overlapping(replace_image)
    assert client.post("/1/update", data={"title": "edited", "body": ""}).status_code == 302
    # The post keeps the newer image, and its file is there; the replaced one is gone.
    assert post_image(query) is not None
    assert stored_images(app) == [post_image(query)]


def test_removing_an_image_replaced_meanwhile_removes_the_new_one(app, client, overlapping, query):
    overlapping(replace_image)
    data = {"title": "t", "body": "", "remove_image": "1"}
    assert client.post("/1/update", data=data).status_code == 302
    assert post_image(query) is None
    assert stored_images(app) == []


def test_deleting_a_post_whose_image_was_replaced_meanwhile_leaves_no_file(
    app, client, overlapping
):
    overlapping(replace_image)
    assert client.post("/1/delete").status_code == 302
    assert stored_images(app) == []


def test_an_edit_of_a_post_deleted_meanwhile_is_404_and_stores_nothing(app, client, overlapping):
    overlapping(lambda other: other.post("/1/delete"))
    data = {"title": "t", "body": "", "image": image_upload(3)}
    assert client.post("/1/update", data=data).status_code == 404
    assert stored_images(app) == []


LONG_BODY = (
    "The *opening* words of a [long](https://example.org) story. " + "more words " * 600 + "THE END"
)


EXCERPT_START = '<p>The <em>opening</em> words of a <a href="https://example.org"'
EXCERPT_END = "more words more words\u2026</p>"
SNIPPET = "The <mark>opening</mark> words of a long story. more words"


@pytest.mark.parametrize(
    ("path", "start", "end"),
    [
        ("/", EXCERPT_START, EXCERPT_END),
        ("/user/test", EXCERPT_START, EXCERPT_END),
        ("/tag/story", EXCERPT_START, EXCERPT_END),
        ("/search?q=opening", SNIPPET, "more \u2026</p>"),
    ],
)
def test_list_pages_show_a_card_with_the_start_of_each_post(app, client, path, start, end):
    with app.app_context():
        db = get_db()
        db.execute("UPDATE post SET body = ? WHERE id = 1", (LONG_BODY,))
        save_tags(db, 1, ["story"])
    page = client.get(path).data.decode()
    assert start in page and end in page
    assert "THE END" not in page
    assert "by test on 2018-01-01 &middot; 5 min read" in " ".join(page.split())
    assert '<p class="more"><a href="/1/test-title">Continue reading' in page
    assert 'href="/tag/story"' in page and "0 likes</a>" in page
    assert "THE END" in client.get("/1/test-title").data.decode()


def test_a_short_post_is_shown_whole_in_its_card(client):
    page = client.get("/").data.decode()
    assert '<div class="body excerpt"><p>test\nbody</p>\n</div>' in page
    assert "1 min read" in page


def test_post_images_have_their_size(client, auth):
    auth.login()
    client.post(
        "/1/update",
        data={
            "title": "t",
            "body": "b",
            "image": (io.BytesIO(image_bytes(size=(40, 30))), "a.png"),
            "image_alt": "A <red> square",
        },
    )
    for path in ("/", "/1/t"):
        # The writer's description is its alt text.
        assert re.search(
            r"<img class=\"[\w-]+\" src=\"/uploads/\w+\.png\"\s+"
            r"alt=\"A &lt;red&gt; square\" width=\"40\" height=\"30\"",
            client.get(path).data.decode(),
        )


def test_an_image_whose_file_is_gone_is_shown_without_a_size(app, client, auth):
    auth.login()
    client.post(
        "/1/update",
        data={"title": "t", "body": "b", "image": (io.BytesIO(image_bytes()), "a.png")},
    )
    with app.app_context():
        (name,) = get_db().execute("SELECT image FROM post WHERE id = 1").fetchone()
        get_db().execute("DELETE FROM image WHERE name = ?", (name,))
    page = client.get("/").data.decode()
    assert f'src="/uploads/{name}"' in page
    # Without a description the image is decorative.
    assert re.search(rf'src="/uploads/{name}"\s+alt="" loading="lazy">', page)


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("test title", "test-title"),
        ("  Hello, Wörld! Ça va?  ", "hello-world-ca-va"),
        ("C'est l'été -- 2024", "c-est-l-ete-2024"),
        ("日本語", "post"),
        ("!!!", "post"),
        ("Delete", "delete-post"),
        ("like", "like-post"),
        ("Write comment!", "write-comment-post"),
        ("word " * 30, "-".join(["word"] * 16)),
        ("x" * 100, "x" * 80),
    ],
)
def test_slugs_are_readable_and_never_an_action(title, slug):
    assert blog.slugify(title) == slug


@pytest.mark.parametrize(
    "path", ["/1", "/1/old-title", "/1/Test-Title", "/1/test-title-2", "/1/likes"]
)
def test_other_post_urls_move_permanently_to_the_one_with_the_slug(client, path):
    response = client.get(path)
    assert response.status_code == 301
    assert response.headers["Location"] == "/1/test-title"
    assert client.get(f"{path}?comments=2").headers["Location"] == "/1/test-title?comments=2"


def test_a_renamed_post_moves_to_its_new_slug(client, auth):
    auth.login()
    client.post("/1/update", data={"title": "Delete", "body": "b"})
    assert client.get("/1/test-title").headers["Location"] == "/1/delete-post"
    page = client.get("/1/delete-post")
    assert page.status_code == 200 and b"<h1>Delete</h1>" in page.data
    assert b'<h2><a href="/1/delete-post">Delete</a></h2>' in client.get("/").data


@pytest.mark.parametrize("action", ["delete", "comment", "like"])
def test_the_actions_urls_are_not_slugs(client, action):
    # A GET of an action is refused as before, not redirected to the post.
    response = client.get(f"/1/{action}")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_missing_posts_are_404_whatever_their_slug(client):
    assert client.get("/2/test-title").status_code == 404
    assert client.get("/1/test-title/more").status_code == 404


def future(seconds=3600, zone="UTC"):
    """Return the "Publish at" text for a time this many seconds ahead, in zone."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def visible_to_readers(client, address, words):
    """Where a reader finds a link to the post at address (its path), searching for words:
    (index, author page, tag page "desk", search, feed, sitemap)."""
    paths = ("/", "/user/test", "/tag/desk", f"/search?q={words}", "/feed.atom", "/sitemap.xml")
    return [address.encode() in client.get(path).data for path in paths]


def test_a_draft_is_seen_by_its_author_only(app, client, auth):
    auth.login()
    response = client.post(
        "/create", data={"title": "quiet words", "body": "", "tags": "desk", "action": "draft"}
    )
    # The writer lands on the post's page, told what happened.
    assert response.headers["Location"] == "/2/quiet-words"
    page = client.get("/2/quiet-words").data
    assert b"Draft saved." in page
    assert b"only you can see this post" in page
    drafts = client.get("/drafts").data
    assert b'href="/2/quiet-words"' in drafts and b"Draft, saved" in drafts
    assert b'href="/drafts"' in client.get("/").data
    assert not any(visible_to_readers(client, "/2/quiet-words", "quiet"))
    auth.logout()
    assert client.get("/2/quiet-words").status_code == 404
    assert client.get("/2").status_code == 404
    assert not any(visible_to_readers(client, "/2/quiet-words", "quiet"))
    auth.login("other", "other")
    assert client.get("/2/quiet-words").status_code == 404
    assert client.post("/2/comment", data={"body": "hi"}).status_code == 404
    assert client.post("/2/like").status_code == 404
    assert client.post("/2/update", data={"title": "x", "body": ""}).status_code == 404


def test_publish_lands_on_the_post_with_a_message(client, auth):
    auth.login()
    response = client.post(
        "/create", data={"title": "loud words", "body": "", "tags": "desk", "action": "publish"}
    )
    assert response.headers["Location"] == "/2/loud-words"
    assert b"Published." in client.get("/2/loud-words").data
    assert b"loud words" not in client.get("/drafts").data
    auth.logout()
    assert all(visible_to_readers(client, "/2/loud-words", "loud"))


def test_a_draft_published_later_is_dated_then(app, client, auth, query):
    auth.login()
    client.post("/1/update", data={"title": "test title", "body": "", "action": "draft"})
    assert query("SELECT created FROM post WHERE id = 1")[0][0] == datetime(2018, 1, 1)
    # A POST without a button (as the tutorial's) publishes at once, and goes to the index.
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    response = client.post("/1/update", data={"title": "test title", "body": ""})
    assert response.headers["Location"] == "/"
    assert query("SELECT created FROM post WHERE id = 1")[0][0] >= before
    # Updating a published post keeps its date, and says so on the button.
    created = query("SELECT created FROM post WHERE id = 1")[0][0]
    assert b">Update</button>" in client.get("/1/update").data
    client.post("/1/update", data={"title": "test title", "body": "b", "action": "publish"})
    assert query("SELECT created FROM post WHERE id = 1")[0][0] == created
    assert b">Publish</button>" in client.get("/create").data


def test_unpublishing_removes_a_post_everywhere_at_once(app, client, auth):
    with app.app_context(), transaction() as db:
        save_tags(db, 1, ["desk"])
        db.execute("INSERT INTO post (title, body, author_id) VALUES ('filler', '', 2)")
        db.execute("UPDATE post SET title = 'old words' WHERE id = 1")
    client.get("/")  # cached for visitors
    assert visible_to_readers(client, "/1/old-words", "old")[:5] == [True] * 5
    auth.login()
    response = client.post("/1/update", data={"title": "old words", "body": "", "action": "draft"})
    assert response.headers["Location"] == "/1/old-words"
    auth.logout()
    assert not any(visible_to_readers(client, "/1/old-words", "old")[:5])
    assert client.get("/1/old-words").status_code == 404


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
def test_scheduling_a_post(make_app, zone, query):
    # query's app made the database with the test data; this one shares it.
    client = make_app(TIMEZONE=zone).test_client()
    client.post("/auth/login", data={"username": "test", "password": "test"})
    when = future(zone=zone)
    response = client.post(
        "/create",
        data={"title": "later", "body": "", "publish_at": when, "action": "publish"},
    )
    assert response.headers["Location"] == "/2/later"
    shown = when.replace("T", " ") + f" {zone}"
    assert f"Scheduled for {shown}.".encode() in client.get("/2/later").data
    assert b"Scheduled for <time" in client.get("/drafts").data
    assert shown.encode() in client.get("/drafts").data
    # The form shows the scheduled time again, in the site's zone.
    assert f'value="{when}"'.encode() in client.get("/2/update").data
    # Stored in UTC.
    (stored,) = query("SELECT created FROM post WHERE id = 2")[0]
    assert stored.strftime("%Y-%m-%dT%H:%M") == future(zone="UTC")
    client.get("/auth/logout")
    assert client.get("/2/later").status_code == 404
    assert b"later" not in client.get("/").data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"publish_at": "tomorrow"}, b"Publish at must be a date and time"),
        ({"action": "destroy"}, b"Unknown form action."),
    ],
)
def test_post_form_refuses_bad_times_and_actions(client, auth, count, data, message):
    auth.login()
    response = client.post("/create", data={"title": "t", "body": "", **data})
    assert response.status_code == 400
    assert message in response.data
    assert count("post") == 1


def test_a_time_with_its_own_offset_is_taken_as_given(client, auth, query):
    auth.login()
    client.post("/create", data={"title": "t", "body": "", "publish_at": "2020-06-01T12:00+02:00"})
    assert query("SELECT created FROM post WHERE id = 2")[0][0] == datetime(2020, 6, 1, 10, 0)
    assert b"t</a>" in client.get("/").data


def test_preview_shows_the_post_as_readers_will_and_saves_nothing(client, auth, snapshot):
    auth.login()
    before = snapshot()
    data = {
        "title": "seen first",
        "body": "some **bold** words",
        "tags": "Desk, Owls",
        "image_alt": "an owl",
        "publish_at": "2999-01-01T09:30",
        "action": "preview",
    }
    response = client.post("/create", data=data)
    assert response.status_code == 200
    page = response.data.decode()
    assert snapshot() == before
    preview, form = page.split('<form method="post" class="form"', 1)
    # The same rendering as the post's own page, with its date and tags.
    assert '<article class="post post-detail">' in preview
    assert "<h1>seen first</h1>" in preview and "<strong>bold</strong>" in preview
    assert "by test on 2999-01-01" in preview and 'href="/tag/owls"' in preview
    assert 'href="/1/update"' not in preview
    # Everything typed is still in the form.
    for value in ("seen first", "Desk, Owls", "an owl", "2999-01-01T09:30"):
        assert f'value="{value}"' in form
    assert "some **bold** words</textarea>" in form
    # An existing post's preview keeps its id and date, and changes nothing.
    response = client.post("/1/update", data={**data, "publish_at": "", "title": "retitled"})
    assert "by test on 2018-01-01" in response.data.decode()
    # Without a time, a new post would be published today.
    response = client.post("/create", data={**data, "publish_at": ""})
    assert f"by test on {datetime.now(UTC):%Y-%m-%d}" in response.data.decode()
    assert snapshot() == before


@pytest.mark.parametrize("path", ("/create", "/1/update"))
def test_errors_are_shown_beside_their_fields(client, auth, path, count):
    auth.login()
    data = {"title": " \t ", "body": "", "tags": "ok, -bad", "publish_at": "soon"}
    response = client.post(path, data=data)
    assert response.status_code == 400
    page = response.data.decode()
    # A title of spaces is as missing as an empty one; the tutorial's words are kept.
    assert '<p id="title-error" class="field-error">Title is required.</p>' in page
    assert re.search(
        r'id="title" [^>]*required aria-invalid="true" autofocus'
        r' aria-describedby="title-error"',
        page,
    )
    assert 'aria-invalid="true" aria-describedby="tags-help tags-error"' in page
    assert (
        'aria-describedby="publish-at-help publish_at-error"' in page
        and "Publish at must be a date and time" in page
    )
    # Only the first invalid field takes the focus.
    assert page.count("autofocus") == 1
    assert 'id="body" rows="12" aria-describedby="body-help">' in page
    assert count("post") == 1


def test_a_card_is_rendered_once_and_shared_by_every_reader(app, monkeypatch):
    author, other, visitor = app.test_client(), app.test_client(), app.test_client()
    for client, name in ((author, "test"), (other, "other")):
        client.post("/auth/login", data={"username": name, "password": name})
    made = []
    real_card = blog.Card
    monkeypatch.setattr(blog, "Card", lambda *parts: made.append(parts) or real_card(*parts))
    mine = author.get("/").data
    assert b'href="/1/update"' in mine and b"Edit</a>" in mine
    theirs = other.get("/").data
    assert b"test title" in theirs
    assert b"/1/update" not in theirs and b"Edit</a>" not in theirs
    assert b"/1/update" not in visitor.get("/").data
    assert b'href="/1/update"' in author.get("/").data
    # One post shown to three readers: its card was rendered once.
    assert len(made) == 1


@pytest.mark.parametrize("full", [False, True])
def test_a_card_never_outlives_an_edit_a_like_or_a_comment(app, client, auth, full):
    page = "/1/test-title" if full else "/"
    auth.login()
    before = client.get(page).data
    assert b"test title" in before
    client.post("/1/update", data={"title": "test title", "body": "edited body"})
    page = client.get(page).data
    assert b"edited body" in page
    assert b"0 likes" in page and b"0 comments" in page or full
    client.post("/1/like")
    assert b"1 like" in client.get("/" if not full else "/1/test-title").data
    client.post("/1/comment", data={"body": "a first comment"})
    after = client.get("/" if not full else "/1/test-title").data
    assert b"1 comment" in after if not full else b"a first comment" in after


def test_a_card_written_by_another_process_is_not_shown_stale(app, client, auth, query):
    auth.login("other", "other")
    assert b"test title" in client.get("/").data
    # A write the app does not make itself (another server process, a command).
    query("UPDATE post SET title = 'retitled elsewhere' WHERE id = 1")
    page = client.get("/").data
    assert b"retitled elsewhere" in page and b"test title" not in page
