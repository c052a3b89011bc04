import io
import re
import xml.etree.ElementTree as ET

import pytest
from images import image_bytes
from listing import add_posts

from flaskr import create_app, discovery
from flaskr.db import get_db

SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def sitemap(client, path="/sitemap.xml"):
    """Return the (loc, lastmod) pairs of a sitemap, or the locs of a sitemap index."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    root = ET.fromstring(response.data)  # noqa: S314 (our own output)
    if root.tag == f"{SITEMAP}sitemapindex":
        return [loc.text for loc in root.iter(f"{SITEMAP}loc")]
    assert root.tag == f"{SITEMAP}urlset"
    return [
        (url.findtext(f"{SITEMAP}loc"), url.findtext(f"{SITEMAP}lastmod"))
        for url in root.iter(f"{SITEMAP}url")
    ]


def test_robots_names_the_sitemap_and_keeps_crawlers_out_of_private_pages(client):
    response = client.get("/robots.txt")
    assert response.mimetype == "text/plain"
    lines = response.data.decode().splitlines()
    assert lines[0] == "User-agent: *"
    for path in ("/auth/", "/create", "/settings", "/admin"):
        assert f"Disallow: {path}" in lines
    assert "Sitemap: http://localhost/sitemap.xml" in lines


def test_sitemap_lists_the_index_and_every_post_with_its_last_change(app, client):
    add_posts(app, 2)
    with app.app_context():
        get_db().execute("UPDATE post SET updated = '2019-05-06 07:08:09' WHERE id = 2")
    assert sitemap(client) == [
        ("http://localhost/", "2018-01-01T00:02:00Z"),  # the newest post's time
        ("http://localhost/1/test-title", "2018-01-01T00:00:00Z"),
        ("http://localhost/2/post-1", "2019-05-06T07:08:09Z"),
        ("http://localhost/3/post-2", "2018-01-01T00:02:00Z"),
    ]


def test_an_empty_site_lists_its_index_page(app, client):
    with app.app_context():
        get_db().execute("DELETE FROM post")
    assert sitemap(client) == [("http://localhost/", None)]


def test_past_the_limit_the_sitemap_becomes_an_index_of_bounded_sitemaps(app, client, monkeypatch):
    monkeypatch.setattr(discovery, "POSTS_PER_SITEMAP", 3)
    add_posts(app, 6)  # ids 1 to 7
    with app.app_context():
        get_db().execute("DELETE FROM post WHERE id = 5")
    numbered = [f"http://localhost/sitemap-{n}.xml" for n in (1, 2, 3)]
    assert sitemap(client) == numbered
    first, second, third = (
        sitemap(client, url.removeprefix("http://localhost")) for url in numbered
    )
    host = "http://localhost"
    assert [loc for loc, _ in first] == [f"{host}/", f"{host}/1/test-title"] + [
        f"{host}/{id}/post-{id - 1}" for id in (2, 3)
    ]
    assert [loc for loc, _ in second] == [f"{host}/4/post-3", f"{host}/6/post-5"]
    assert [loc for loc, _ in third] == [f"{host}/7/post-6"]
    for number in (0, 4):
        assert client.get(f"/sitemap-{number}.xml").status_code == 404


def test_a_small_site_has_no_numbered_sitemaps(client):
    assert client.get("/sitemap-1.xml").status_code == 404


@pytest.mark.sqlite_only
def test_each_sitemap_walks_the_primary_key(app):
    with app.app_context():
        steps = [
            row["detail"]
            for row in get_db().execute(f"EXPLAIN QUERY PLAN {discovery.SITEMAP_QUERY}", (0, 10))
        ]
    assert steps == ["SEARCH p USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"]


def test_favicon_in_every_page_and_where_browsers_look(client):
    assert b'rel="icon" type="image/svg+xml"' in client.get("/").data
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.data[:4] == b"\x00\x00\x01\x00"  # an icon file
    with client.get("/static/favicon.svg") as response:
        assert response.data.startswith(b"<svg")


@pytest.mark.parametrize("path", ["/feed.atom", "/sitemap.xml", "/robots.txt"])
def test_without_site_url_absolute_links_follow_the_request(client, path):
    response = client.get(path, headers={"Host": "blog.example.net:8080"})
    assert response.status_code == 200
    assert b"http://blog.example.net:8080/" in response.data


@pytest.fixture
def site(make_app, app):
    """An app on the test database whose SITE_URL is https://blog.example.org."""
    return make_app(SITE_URL="https://blog.example.org").test_client()


@pytest.mark.parametrize("path", ["/feed.atom", "/feed.rss", "/sitemap.xml", "/robots.txt"])
def test_site_url_makes_every_absolute_link(site, path):
    response = site.get(path, base_url="http://blog.example.org:8080")
    assert response.status_code == 200
    assert b"https://blog.example.org/" in response.data
    assert b"http://blog.example.org" not in response.data
    assert b":8080" not in response.data


def test_site_url_refuses_other_hosts(site):
    response = site.get("/", base_url="http://attacker.example")
    assert response.status_code == 400
    assert b"Host &#39;attacker.example&#39; is not trusted." in response.data


def test_site_url_keeps_relative_links_relative(site):
    page = site.get("/", base_url="http://blog.example.org").data
    assert b'href="/1/test-title"' in page
    # The canonical link is the one absolute URL of a page.
    assert page.count(b"https://blog.example.org") == 1
    assert b'<link rel="canonical" href="https://blog.example.org/">' in page


@pytest.mark.parametrize(
    "value",
    [
        "blog.example.org",
        "ftp://blog.example.org",
        "https://",
        "https://x.org/blog",
        "https://x.org/?a=1",
        "https://user:pw@x.org",
    ],
)
def test_a_bad_site_url_stops_the_start_naming_the_setting(tmp_path, value):
    with pytest.raises(ValueError, match="^SITE_URL must be the site's address"):
        create_app({"DATABASE": str(tmp_path / "db.sqlite"), "SITE_URL": value})


def head(page):
    """Return a page's <meta> properties and names, and its canonical link, as a dict."""
    text = page.decode()
    meta = dict(re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)">', text))
    tags = re.findall(r'<meta property="article:tag" content="([^"]*)">', text)
    canonical = re.findall(r'<link rel="canonical" href="([^"]+)">', text)
    return meta, tags, canonical


def test_list_pages_describe_the_site_and_name_their_canonical_url(app, client):
    add_posts(app, 6)
    meta, _, canonical = head(client.get("/?page=2&utm_source=x").data)
    assert meta["description"] == app.config["SITE_DESCRIPTION"]
    assert canonical == ["http://localhost/?page=2"]
    assert head(client.get("/?page=1").data)[2] == ["http://localhost/"]
    assert head(client.get("/search?q=post&x=1").data)[2] == ["http://localhost/search?q=post"]
    assert "og:title" not in meta
    assert head(client.get("/no/such/page").data)[2] == []


def test_tag_and_author_pages_say_what_they_list(client, auth):
    auth.login()
    client.post("/create", data={"title": "t", "body": "", "tags": "owl"})
    meta, _, canonical = head(client.get("/tag/OWL").data)
    assert meta["description"] == "Posts tagged “owl” on Flaskr, newest first."
    assert canonical == ["http://localhost/tag/OWL"]
    meta, _, _ = head(client.get("/user/test").data)
    assert meta["description"] == "Posts by test on Flaskr, newest first."


def test_a_post_page_carries_its_preview_card(app, client, auth):
    auth.login()
    body = "# Owls\n\nThey *hunt* at night & sleep by day. " + "More words here. " * 20
    image = (io.BytesIO(image_bytes(size=(64, 48))), "a.png")
    client.post(
        "/create",
        data={"title": 'Owls "at" <night>', "body": body, "tags": "owl, bird", "image": image},
    )
    page = client.get("/2", follow_redirects=True).data
    meta, tags, canonical = head(page)
    assert canonical == ["http://localhost/2/owls-at-night"]
    description = meta["description"]
    assert description.startswith("Owls They hunt at night &amp; sleep by day. More words")
    assert description.endswith("\u2026") and len(description.replace("&amp;", "&")) <= 160
    assert meta["og:description"] == description
    assert meta["og:title"] == "Owls &#34;at&#34; &lt;night&gt;"
    assert meta["og:type"] == "article"
    assert meta["og:url"] == "http://localhost/2/owls-at-night"
    assert meta["og:image"].startswith("http://localhost/uploads/")
    assert (meta["og:image:width"], meta["og:image:height"]) == ("64", "48")
    assert meta["twitter:card"] == "summary_large_image"
    assert meta["article:author"] == "http://localhost/user/test"
    assert meta["article:published_time"] == meta["article:modified_time"]
    assert tags == ["bird", "owl"]


def test_a_post_without_an_image_gets_a_small_card(client):
    meta, tags, _ = head(client.get("/1", follow_redirects=True).data)
    assert meta["description"] == "test body"
    assert meta["twitter:card"] == "summary"
    assert "og:image" not in meta
    assert meta["article:published_time"] == "2018-01-01T00:00:00Z"
    assert tags == []


def test_a_lost_image_leaves_the_card_without_it(app, client, auth, query):
    auth.login()
    client.post(
        "/create", data={"title": "t", "body": "", "image": (io.BytesIO(image_bytes()), "a.png")}
    )
    (name,) = query("SELECT image FROM post WHERE id = 2")[0]
    query("DELETE FROM image WHERE name = ?", (name,))
    meta, _, _ = head(client.get("/2", follow_redirects=True).data)
    assert "og:image" not in meta
    assert meta["twitter:card"] == "summary"
