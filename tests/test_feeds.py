import io
import json
from datetime import datetime, timedelta

import feedparser
import pytest
from images import fetch, image_bytes
from listing import add_posts

from flaskr.db import get_db

FORMATS = [("atom", "atom10", "application/atom+xml"), ("rss", "rss20", "application/rss+xml")]
FEEDS = [(f"/feed.{extension}", version, type) for extension, version, type in FORMATS]


def add_daily_posts(app, n):
    """Posts by "other" with a little Markdown, "post k" on 2019-01-k at 10:00."""
    add_posts(
        app, n, authors=(2,), body="body *{k}*", start=datetime(2018, 12, 31, 10), step=timedelta(1)
    )


def parse(client, path):
    response = client.get(path)
    assert response.status_code == 200
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.get("bozo_exception")
    return response, feed


@pytest.mark.parametrize(("path", "version", "content_type"), FEEDS)
def test_feeds_are_valid_newest_first_with_absolute_links(app, client, path, version, content_type):
    add_daily_posts(app, 25)
    response, feed = parse(client, path)
    assert response.mimetype == content_type
    assert feed.version == version
    assert feed.feed.title == "Flaskr"
    assert len(feed.entries) == 20
    first = feed.entries[0]
    assert first.title == "post 25"
    assert first.link == "http://localhost/26/post-25"
    # The entry's id is its post's permanent address, whatever its title becomes.
    assert first.id == "http://localhost/26"
    assert first.author == "other"
    assert first.published_parsed[:6] == (2019, 1, 25, 10, 0, 0)
    assert "<em>25</em>" in (first.content[0].value if version == "atom10" else first.summary)
    assert [e.title for e in feed.entries[:3]] == ["post 25", "post 24", "post 23"]


@pytest.mark.parametrize(("path", "version", "content_type"), FEEDS)
def test_hostile_text_is_escaped(client, auth, path, version, content_type):
    auth.login()
    client.post(
        "/create",
        data={
            "title": "A & B <c> ]]> \x01\x0b",
            "body": "<script>x</script> & **b** \x08",
        },
    )
    response, feed = parse(client, path)
    first = feed.entries[0]
    assert first.title.strip() == "A & B <c> ]]>"
    html = first.content[0].value if version == "atom10" else first.summary
    assert "&lt;script&gt;x&lt;/script&gt; &amp; <strong>b</strong>" in html
    assert b"<script>" not in response.data


@pytest.mark.parametrize(("path", "version", "content_type"), FEEDS)
def test_tags_are_categories(client, auth, path, version, content_type):
    auth.login()
    client.post("/create", data={"title": "t", "body": "", "tags": "one, two"})
    _, feed = parse(client, path)
    assert [t.term for t in feed.entries[0].tags] == ["one", "two"]


@pytest.mark.parametrize(("path", "version", "content_type"), FEEDS)
def test_an_empty_feed_is_valid(app, client, path, version, content_type):
    with app.app_context():
        get_db().execute("DELETE FROM post")
    response, feed = parse(client, path)
    assert feed.entries == []
    assert "Last-Modified" not in response.headers
    etag = response.headers["ETag"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize("path", ["/feed.atom", "/feed.rss"])
def test_conditional_requests(client, auth, path):
    response = client.get(path)
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    assert modified == "Mon, 01 Jan 2018 00:00:00 GMT"

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    old = "Sun, 31 Dec 2017 00:00:00 GMT"
    assert client.get(path, headers={"If-Modified-Since": old}).status_code == 200

    # An edit changes both validators.
    auth.login()
    client.post("/1/update", data={"title": "edited", "body": "b"})
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 200


def test_an_edit_updates_the_atom_entry(client, auth):
    auth.login()
    client.post("/1/update", data={"title": "edited", "body": "b"})
    _, feed = parse(client, "/feed.atom")
    entry = feed.entries[0]
    assert entry.published_parsed[:3] == (2018, 1, 1)
    assert entry.updated_parsed > entry.published_parsed


def test_every_page_announces_the_feeds(client):
    for path in ("/", "/1/test-title", "/search", "/auth/login", "/no/such/page"):
        page = client.get(path).data
        assert b'<link rel="alternate" type="application/atom+xml"' in page, path
        assert b'href="/feed.atom"' in page and b'href="/feed.rss"' in page


def content(entry, version):
    """An entry's HTML, where each format keeps it."""
    return entry.content[0].value if version == "atom10" else entry.summary


@pytest.mark.parametrize(("path", "version", "content_type"), FEEDS)
def test_a_feed_of_the_longest_posts_stays_small(app, client, path, version, content_type):
    with app.app_context():
        get_db().executemany(
            "INSERT INTO post (title, body, author_id) VALUES (?, ?, 1)",
            [(f"long {k}", '"' * 100_000) for k in range(10)]
            + [(f"links {k}", "[](https://example.org/)" * 4000) for k in range(10)],
        )
    response, feed = parse(client, path)
    assert len(response.data) < 1_000_000
    assert len(feed.entries) == 20
    for entry in feed.entries:
        html = content(entry, version)
        assert html.endswith(f'<p><a href="{entry.link}">Continue reading</a></p>')
        assert entry.link.startswith("http://localhost/")
    assert content(feed.entries[-1], version).startswith("<p>" + "&quot;" * 2000 + "\u2026</p>")


@pytest.mark.parametrize(("path", "version", "content_type"), FEEDS)
def test_a_long_post_is_cut_between_words_with_a_link_to_the_rest(
    app, client, path, version, content_type
):
    body = "word " * 1000 + "*the end*"
    with app.app_context():
        db = get_db()
        db.execute("UPDATE post SET body = ? WHERE id = 1", (body,))
        db.execute("INSERT INTO post (title, body, author_id) VALUES ('short', 'all *here*', 1)")
    _, feed = parse(client, path)
    short, long = feed.entries
    assert content(short, version) == "<p>all <em>here</em></p>"
    html = content(long, version)
    assert html.startswith("<p>word word ")
    assert html.count("word") == 400  # 2,000 characters: 400 whole words
    assert "the end" not in html
    assert html.endswith(
        'word\u2026</p><p><a href="http://localhost/1/test-title">Continue reading</a></p>'
    )


def json_feed(client, path):
    """Return a JSON feed as parsed JSON, checked against JSON Feed 1.1's required fields."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "application/feed+json"
    feed = json.loads(response.data)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(feed["title"], str)
    for item in feed["items"]:
        assert isinstance(item["id"], str)
        assert isinstance(item["content_html"], str)
        datetime.strptime(item["date_published"], "%Y-%m-%dT%H:%M:%SZ")
    return feed


def test_the_json_feed_carries_the_newest_posts(app, client, auth):
    add_daily_posts(app, 25)
    feed = json_feed(client, "/feed.json")
    assert feed["home_page_url"] == "http://localhost/"
    assert feed["feed_url"] == "http://localhost/feed.json"
    assert len(feed["items"]) == 20
    first = feed["items"][0]
    assert first["title"] == "post 25"
    assert first["id"] == "http://localhost/26"
    assert first["url"] == "http://localhost/26/post-25"
    assert first["content_html"] == "<p>body <em>25</em></p>\n"
    assert first["date_published"] == "2019-01-25T10:00:00Z"
    assert first["authors"] == [{"name": "other", "url": "http://localhost/user/other"}]


def test_the_json_feed_escapes_nothing_it_should_not(client, auth):
    auth.login()
    client.post("/create", data={"title": 'A "quoted" </script>', "body": "<b>x</b>", "tags": "t"})
    item = json_feed(client, "/feed.json")["items"][0]
    assert item["title"] == 'A "quoted" </script>'
    assert item["content_html"] == "<p>&lt;b&gt;x&lt;/b&gt;</p>\n"
    assert item["tags"] == ["t"]


@pytest.fixture
def tagged(client, auth):
    """Posts by "test" tagged owl (one with an image) and one by "other" tagged bat."""
    auth.login()
    image = (io.BytesIO(image_bytes()), "a.png")
    client.post("/create", data={"title": "owl one", "body": "", "tags": "Owl"})
    client.post("/create", data={"title": "owl two", "body": "", "tags": "owl", "image": image})
    auth.logout()
    auth.login("other", "other")
    client.post("/create", data={"title": "bat", "body": "", "tags": "bat"})
    auth.logout()


@pytest.mark.parametrize(("extension", "version", "content_type"), FORMATS)
def test_every_tag_and_author_has_its_feeds(client, tagged, extension, version, content_type):
    _, feed = parse(client, f"/tag/OWL/feed.{extension}")
    assert [e.title for e in feed.entries] == ["owl two", "owl one"]
    assert feed.feed.title == "Flaskr: owl"
    assert feed.feed.link == "http://localhost/tag/owl"
    _, feed = parse(client, f"/user/Other/feed.{extension}")
    assert [e.title for e in feed.entries] == ["bat"]
    assert feed.feed.title == "Flaskr: other"
    assert feed.feed.link == "http://localhost/user/other"
    assert client.get(f"/tag/nothing/feed.{extension}").status_code == 404
    assert client.get(f"/user/nobody/feed.{extension}").status_code == 404


def test_json_feeds_of_a_tag_and_an_author(client, tagged):
    feed = json_feed(client, "/tag/owl/feed.json")
    assert [item["title"] for item in feed["items"]] == ["owl two", "owl one"]
    assert feed["feed_url"] == "http://localhost/tag/owl/feed.json"
    feed = json_feed(client, "/user/test/feed.json")
    assert [item["title"] for item in feed["items"]] == ["owl two", "owl one", "test title"]
    assert client.get("/user/nobody/feed.json").status_code == 404


def test_tag_and_author_pages_announce_their_feeds(client, tagged):
    tag_page = client.get("/tag/owl").data
    author_page = client.get("/user/other").data
    for extension in ("atom", "rss", "json"):
        assert f'href="/tag/owl/feed.{extension}"'.encode() in tag_page
        assert f'href="/user/other/feed.{extension}"'.encode() in author_page
    assert b'href="/feed.json"' in client.get("/").data


def stored_image_of(query, title):
    (name,) = query("SELECT image FROM post WHERE title = ?", (title,))[0]
    return name


@pytest.mark.parametrize(("extension", "version", "content_type"), FORMATS)
def test_entries_carry_their_image_as_an_enclosure(
    app, client, tagged, query, extension, version, content_type
):
    name = stored_image_of(query, "owl two")
    size = len(fetch(client, f"/uploads/{name}")[1])
    _, feed = parse(client, f"/feed.{extension}")
    with_image, without = feed.entries[1], feed.entries[2]
    assert with_image.title == "owl two"
    (enclosure,) = with_image.enclosures
    assert enclosure.href == f"http://localhost/uploads/{name}"
    assert int(enclosure.length) == size
    assert enclosure.type == "image/png"
    assert without.enclosures == []


def test_json_feed_items_name_their_image(client, tagged, query):
    name = stored_image_of(query, "owl two")
    items = json_feed(client, "/feed.json")["items"]
    assert items[1]["image"] == f"http://localhost/uploads/{name}"
    assert "image" not in items[2]


def test_a_lost_image_leaves_the_entry_without_it(app, client, tagged, query):
    query("DELETE FROM image WHERE name = ?", (stored_image_of(query, "owl two"),))
    _, feed = parse(client, "/feed.atom")
    assert feed.entries[1].title == "owl two"
    assert feed.entries[1].enclosures == []


@pytest.mark.parametrize("path", ["/tag/owl/feed.atom", "/user/test/feed.rss", "/feed.json"])
def test_every_feed_answers_conditional_requests(client, tagged, path):
    etag = client.get(path).headers["ETag"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
