"""Feeds: the newest posts as Atom 1.0 and RSS 2.0, answering conditional requests.

Each entry carries the start of its post, with a link to read the rest on the site.
"""

import hashlib
import re
from datetime import UTC, datetime
from email.utils import format_datetime

from flask import Blueprint, make_response, render_template, request
from markupsafe import Markup

from .blog import INDEX_QUERY, post_url
from .caching import cached_page
from .db import get_db
from .markdown import excerpt_html, render_markdown
from .tags import with_tags

bp = Blueprint("feeds", __name__)

FEED_SIZE = 20
FEED_QUERY = f"{INDEX_QUERY} LIMIT {FEED_SIZE}"
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


def feed_response(template, content_type):
    """Render a feed of the newest posts; 304 when the reader already has this version."""
    posts = with_tags(get_db().execute(FEED_QUERY).fetchall())
    for post in posts:
        post["changed"] = post["updated"] or post["created"]
        post["content"] = entry_content(post)
    updated = max((as_utc(post["changed"]) for post in posts), default=EPOCH)
    body = render_template(template, posts=posts, updated=updated)
    response = make_response(body)
    response.content_type = content_type
    # The ETag follows every change, edits and deletions included; Last-Modified is the
    # newest post's or edit's time.
    response.set_etag(hashlib.sha256(body.encode()).hexdigest()[:32])
    if posts:
        response.last_modified = updated
    return response.make_conditional(request)


@bp.route("/feed.atom")
@cached_page()
def atom():
    """The newest posts as an Atom 1.0 feed."""
    return feed_response("feeds/atom.xml", "application/atom+xml; charset=utf-8")


@bp.route("/feed.rss")
@cached_page()
def rss():
    """The newest posts as an RSS 2.0 feed."""
    return feed_response("feeds/rss.xml", "application/rss+xml; charset=utf-8")
