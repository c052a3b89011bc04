"""Discovery: the site's own address (SITE_URL), robots.txt, the sitemap and the favicon."""

import functools
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, make_response, request, url_for
from flask.globals import request_ctx
from markupsafe import escape

from .blog import PUBLISHED, slugify
from .caching import cached_page
from .db import get_db
from .markdown import render_markdown

bp = Blueprint("discovery", __name__)

# The most URLs one sitemap file may hold (the sitemap protocol's limit). A site with more
# gets a sitemap index of numbered sitemaps, the n-th holding the posts whose ids fall in
# the n-th block of POSTS_PER_SITEMAP ids, read by a walk of the primary key.
SITEMAP_URLS = 50_000
# Each file keeps a place for the index page (listed in the first).
POSTS_PER_SITEMAP = SITEMAP_URLS - 1

SITEMAP_XMLNS = "http://www.sitemaps.org/schemas/sitemap/0.9"
# Stored times are UTC; the sitemap wants them as 2018-01-01T00:00:00Z.
W3C_TIME = "%Y-%m-%dT%H:%M:%SZ"
# One block of posts: a range of the primary key (tests/test_discovery.py checks the plan).
SITEMAP_QUERY = (
    "SELECT id, title, CASE WHEN updated > created THEN updated ELSE created END"
    f" FROM post p WHERE id > ? AND id <= ? AND {PUBLISHED} ORDER BY id"
)

# A description is what a search result or a preview card shows under the title.
DESCRIPTION_LENGTH = 160
# Enough of a body's Markdown to fill a description, however much markup it holds.
DESCRIPTION_SOURCE = 2000
# The query arguments that make a different page; any other is left out of canonical links.
CANONICAL_ARGS = ("q", "page")

ROBOTS_DISALLOW = ("/auth/", "/create", "/settings", "/admin")


def parse_site_url(value):
    """Return SITE_URL as (scheme, host[:port]), or raise ValueError naming the setting."""
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        raise ValueError(
            f"SITE_URL must be the site's address, such as https://blog.example.org, not {value!r}"
        )
    return parts.scheme, parts.netloc


def use_site_url():
    """Build this request's absolute URLs on SITE_URL, whatever Host it was sent to."""
    scheme, netloc = current_app.extensions["flaskr_site_url"]
    # The request's own adapter has matched the URL already; this one only builds. It also
    # serves the 400 page of a request for another host, which got no adapter at all.
    request_ctx.url_adapter = current_app.url_map.bind(
        netloc, script_name=request.script_root or "/", url_scheme=scheme
    )


@functools.lru_cache(maxsize=512)
def describe(body):
    """Return a post's description: the start of its text, without markup, cut at a word."""
    text = " ".join(render_markdown(body[:DESCRIPTION_SOURCE]).striptags().split())
    if len(text) <= DESCRIPTION_LENGTH:
        return text
    return text[: DESCRIPTION_LENGTH - 1].rpartition(" ")[0] + "\u2026"


def canonical_url():
    """Return this page's one absolute URL (None for error pages), for <link rel="canonical">."""
    if "canonical_url" not in g:
        g.canonical_url = None
        if request.url_rule is not None:
            args = {name: request.args[name] for name in CANONICAL_ARGS if request.args.get(name)}
            if args.get("page") == "1":
                del args["page"]
            endpoint = request.url_rule.endpoint
            g.canonical_url = url_for(endpoint, **request.view_args, **args, _external=True)
    return g.canonical_url


@bp.app_context_processor
def head_helpers():
    return {"canonical_url": canonical_url, "describe": describe}


@bp.route("/robots.txt")
@cached_page()
def robots():
    """Name the sitemap and keep crawlers out of the pages only people use."""
    lines = ["User-agent: *", *(f"Disallow: {path}" for path in ROBOTS_DISALLOW)]
    lines.append(f"Sitemap: {url_for('discovery.sitemap', _external=True)}")
    response = make_response("\n".join(lines) + "\n")
    response.content_type = "text/plain; charset=utf-8"
    return response


def xml_response(body):
    response = make_response(body)
    response.content_type = "application/xml; charset=utf-8"
    return response


def last_post_id():
    return get_db().execute("SELECT COALESCE(MAX(id), 0) FROM post").fetchone()[0]


def sitemap_count(last_id):
    """Return how many numbered sitemaps the site needs, or 0 when one file holds it all."""
    return 0 if last_id <= POSTS_PER_SITEMAP else -(-last_id // POSTS_PER_SITEMAP)


def w3c_time(moment):
    """Return a stored time as the sitemap writes it.

    SQLite hands a computed time over as its text, 'YYYY-MM-DD HH:MM:SS'; PostgreSQL as
    a datetime.
    """
    if isinstance(moment, str):
        return f"{moment.replace(' ', 'T')}Z"
    return moment.strftime(W3C_TIME)


def url_entry(loc, lastmod):
    lastmod = f"<lastmod>{w3c_time(lastmod)}</lastmod>" if lastmod else ""
    return f"  <url><loc>{loc}</loc>{lastmod}</url>\n"


def urlset(low, high, with_index):
    """Return a sitemap of the posts with low < id <= high (and the index page), in id order."""
    db = get_db()
    # Built by hand rather than by url_for and a template:
    # a file may hold 50,000 posts.
    post_base = escape(url_for("blog.detail", id=0, _external=True).removesuffix("0"))
    # Each post at its own address (the slug of its title), as post_url makes it.
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n', f'<urlset xmlns="{SITEMAP_XMLNS}">\n']
    if with_index:
        newest = db.execute(
            f"SELECT created FROM post p WHERE {PUBLISHED} ORDER BY created DESC, id DESC LIMIT 1"
        ).fetchone()
        parts.append(url_entry(escape(url_for("index", _external=True)), newest and newest[0]))
    rows = db.execute(SITEMAP_QUERY, (low, high))
    parts.extend(
        url_entry(f"{post_base}{id}/{slugify(title)}", lastmod) for id, title, lastmod in rows
    )
    parts.append("</urlset>\n")
    return xml_response("".join(parts))


@bp.route("/sitemap.xml")
@cached_page()
def sitemap():
    """The index page and every post; past SITEMAP_URLS, an index of numbered sitemaps."""
    last_id = last_post_id()
    count = sitemap_count(last_id)
    if not count:
        return urlset(0, last_id, with_index=True)
    entries = "".join(
        f"  <sitemap><loc>{escape(url_for('discovery.numbered_sitemap', number=n, _external=True))}"
        "</loc></sitemap>\n"
        for n in range(1, count + 1)
    )
    return xml_response(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<sitemapindex xmlns="{SITEMAP_XMLNS}">\n{entries}</sitemapindex>\n'
    )


@bp.route("/sitemap-<int:number>.xml")
@cached_page()
def numbered_sitemap(number):
    """The n-th block of POSTS_PER_SITEMAP post ids; the first also lists the index page."""
    if not 1 <= number <= sitemap_count(last_post_id()):
        abort(404, f"There is no sitemap {number}.")
    low = (number - 1) * POSTS_PER_SITEMAP
    return urlset(low, low + POSTS_PER_SITEMAP, with_index=number == 1)


@bp.route("/favicon.ico")
def favicon():
    """The site's icon, where browsers look for it without being told."""
    return current_app.send_static_file("favicon.ico")


def init_app(app):
    """Take SITE_URL: absolute URLs on it, and requests for any other host refused (400)."""
    site_url = app.config["SITE_URL"]
    if not site_url:
        return
    scheme, netloc = parse_site_url(site_url)
    app.extensions["flaskr_site_url"] = (scheme, netloc)
    app.config["TRUSTED_HOSTS"] = [urlsplit(site_url).hostname]
    app.before_request(use_site_url)
