"""Feeds: the newest posts of the site, a tag or an author as Atom 1.0, RSS 2.0 and JSON Feed 1.1.

Each entry carries the start of its post, with a link to read the rest on the site, and its
image as an enclosure. Feeds answer conditional requests.
"""

import hashlib
import json
import re
from datetime import UTC, datetime
from email.utils import format_datetime

from flask import Blueprint, make_response, render_template, request, url_for
from markupsafe import Markup

from .admin import site_title
from .blog import AUTHOR_QUERY, INDEX_QUERY, TAG_PAGE_QUERY, get_author, get_tag_id, post_url
from .caching import cached_page, remember
from .db import get_db
from .markdown import excerpt_html, render_markdown
from .tags import normalize, with_tags
from .uploads import MIMETYPES, image_length

bp = Blueprint("feeds", __name__)

FEED_SIZE = 20
# The formats every feed comes in (the URL's extension), as a route converter.
FORMAT = "any(atom, rss, json)"
# How each format announces itself in a page's <head>: its type and its name.
ANNOUNCED = {
    "atom": ("application/atom+xml", "Atom"),
    "rss": ("application/rss+xml", "RSS"),
    "json": ("application/feed+json", "JSON Feed"),
}
FEED_LINK = Markup('<link rel="alternate" type="{}" title="{} ({})" href="{}">')
CONTENT_TYPES = {format: f"{type}; charset=utf-8" for format, (type, _) in ANNOUNCED.items()}
# Characters of each post's rendered body an entry carries: with FEED_SIZE entries, a
# feed of the longest posts stays under about 1 MB.
FEED_EXCERPT_LENGTH = 2000

# Characters XML 1.0 cannot carry at all, even escaped; a feed holding one is unreadable.
INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# The time of an empty feed, so that its ETag does not change from request to request.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def as_utc(moment):
    """Return a stored (naive, UTC) timestamp as an aware datetime."""
    return moment.replace(tzinfo=UTC)


@bp.app_template_filter("rfc3339")
def rfc3339(moment):
    """Format a time as Atom wants it: 2018-01-01T00:00:00Z."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


@bp.app_template_filter("rfc822")
def rfc822(moment):
    """Format a time as RSS wants it: Mon, 01 Jan 2018 00:00:00 GMT."""
    return format_datetime(as_utc(moment), usegmt=True)


@bp.app_template_filter("xml_text")
def xml_text(value):
    """Return value as plain text (escaped by the template) without XML-invalid characters."""
    return INVALID_XML.sub("", str.__str__(value))


def entry_content(post):
    """Return the HTML of a post's feed entry: its start, and a link to the rest when cut."""
    excerpt = excerpt_html(render_markdown(post["body"]), FEED_EXCERPT_LENGTH)
    if not excerpt.cut:
        return excerpt.html
    link = Markup('<p><a href="{}">Continue reading</a></p>').format(post_url(post, _external=True))
    return excerpt.html + link


@bp.app_template_global()
def feed_links(title, endpoint, **values):
    """Return the <link>s that let feed readers find a list's feeds from its page.

    Made once for every page that names the same feeds (caching.remember).
    """
    key = ("feed links", request.script_root, title, endpoint, *sorted(values.items()))
    return remember(
        key,
        lambda: Markup("\n  ").join(
            FEED_LINK.format(type, title, name, url_for(endpoint, format=format, **values))
            for format, (type, name) in ANNOUNCED.items()
        ),
    )


def enclosure(name):
    """Return a post image's absolute URL, size and type for a feed entry, or None."""
    if not name:
        return None
    length = image_length(name)
    if length is None:
        return None  # an image lost: the entry goes without it
    return {
        "url": url_for("uploads.uploaded", name=name, _external=True),
        "length": length,
        "type": MIMETYPES[name.rsplit(".", 1)[1]],
    }


def json_feed(feed, posts):
    """Render a feed as JSON Feed 1.1."""
    items = []
    for post in posts:
        item = {
            # The id stays the short address, as in the other feeds: slugs change with titles.
            "id": url_for("blog.detail", id=post["id"], _external=True),
            "url": post_url(post, _external=True),
            "title": post["title"],
            "content_html": str(post["content"]),
            "date_published": rfc3339(post["created"]),
            "date_modified": rfc3339(post["changed"]),
            "authors": [
                {
                    "name": post["username"],
                    "url": url_for("blog.author", username=post["username"], _external=True),
                }
            ],
            "tags": post["tags"],
        }
        if post["enclosure"]:
            item["image"] = post["enclosure"]["url"]
        items.append(item)
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": feed["title"],
        "description": feed["description"],
        "home_page_url": feed["home"],
        "feed_url": feed["self"],
        "items": items,
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


def feed_response(format, feed, query, params=()):
    """Render a feed of a list's newest posts; 304 when the reader already has this version."""
    posts = with_tags(get_db().execute(f"{query} LIMIT {FEED_SIZE}", params).fetchall())
    for post in posts:
        # A post edited while scheduled was changed before it was published.
        post["changed"] = max(post["updated"] or post["created"], post["created"])
        post["content"] = entry_content(post)
        post["enclosure"] = enclosure(post["image"])
    updated = max((as_utc(post["changed"]) for post in posts), default=EPOCH)
    feed["self"] = url_for(request.endpoint, **request.view_args, _external=True)
    if format == "json":
        body = json_feed(feed, posts)
    else:
        body = render_template(f"feeds/{format}.xml", feed=feed, posts=posts, updated=updated)
    response = make_response(body)
    response.content_type = CONTENT_TYPES[format]
    # The ETag follows every change, edits and deletions included; Last-Modified is the
    # newest post's or edit's time.
    response.set_etag(hashlib.sha256(body.encode()).hexdigest()[:32])
    if posts:
        response.last_modified = updated
    return response.make_conditional(request)


@bp.route(f"/feed.<{FORMAT}:format>")
@cached_page()
def site(format):
    """The newest posts as an Atom, RSS or JSON feed."""
    feed = {
        "title": site_title(),
        "description": "The newest posts.",
        "home": url_for("index", _external=True),
    }
    return feed_response(format, feed, INDEX_QUERY)


@bp.route(f"/tag/<name>/feed.<{FORMAT}:format>")
@cached_page()
def tag(name, format):
    """The newest posts with one tag (any case) as a feed."""
    tag_id = get_tag_id(name)
    feed = {
        "title": f"{site_title()}: {normalize(name)}",
        "description": f"The newest posts tagged '{normalize(name)}'.",
        "home": url_for("blog.tag", name=normalize(name), _external=True),
    }
    return feed_response(format, feed, TAG_PAGE_QUERY, (tag_id,))


@bp.route(f"/user/<username>/feed.<{FORMAT}:format>")
@cached_page()
def author(username, format):
    """The newest posts of one author (name in any case) as a feed."""
    user = get_author(username)
    feed = {
        "title": f"{site_title()}: {user['username']}",
        "description": f"The newest posts by {user['username']}.",
        "home": url_for("blog.author", username=user["username"], _external=True),
    }
    return feed_response(format, feed, AUTHOR_QUERY, (user["id"],))
