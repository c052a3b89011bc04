from datetime import datetime, timedelta

import feedparser
import pytest
from listing import add_posts

from flaskr.db import get_db

FEEDS = [
    ("/feed.atom", "atom10", "application/atom+xml"),
    ("/feed.rss", "rss20", "application/rss+xml"),
]


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
