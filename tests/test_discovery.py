import xml.etree.ElementTree as ET

import pytest
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
        ("http://localhost/1", "2018-01-01T00:00:00Z"),
        ("http://localhost/2", "2019-05-06T07:08:09Z"),
        ("http://localhost/3", "2018-01-01T00:02:00Z"),
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
    assert [loc for loc, _ in first] == [f"http://localhost/{id}" for id in ("", 1, 2, 3)]
    assert [loc for loc, _ in second] == ["http://localhost/4", "http://localhost/6"]
    assert [loc for loc, _ in third] == ["http://localhost/7"]
    for number in (0, 4):
        assert client.get(f"/sitemap-{number}.xml").status_code == 404


def test_a_small_site_has_no_numbered_sitemaps(client):
    assert client.get("/sitemap-1.xml").status_code == 404


def test_each_sitemap_walks_the_primary_key(app):
    with app.app_context():
        steps = [
            row["detail"]
            for row in get_db().execute(f"EXPLAIN QUERY PLAN {discovery.SITEMAP_QUERY}", (0, 10))
        ]
    assert steps == ["SEARCH post USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"]


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
    assert b'href="/1"' in page
    assert b"https://blog.example.org" not in page.replace(b"https://blog.example.org/feed", b"")


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
