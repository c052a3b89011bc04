"""Search: /search?q=, full-text search of titles and bodies through SQLite FTS5."""

import re

from flask import Blueprint, render_template, request

from .blog import POST_QUERY, render_post_list
from .caching import cached_page

bp = Blueprint("search", __name__)

# Words past this many are ignored: more never narrows a search usefully, and each one
# costs an index lookup.
MAX_TERMS = 32

# Best match first: FTS5's rank is bm25(). The full-text index drives the query and each
# match is one lookup of its post.
SEARCH_QUERY = (
    POST_QUERY + " JOIN post_fts f ON f.rowid = p.id WHERE f.post_fts MATCH ? ORDER BY f.rank"
)


def search_terms(text):
    """Return the words of a query, at most MAX_TERMS of them."""
    return re.findall(r"\w+", text)[:MAX_TERMS]


def match_expression(terms):
    """Return an FTS5 query that finds posts containing every term.

    Each term becomes a quoted FTS string, so no user text is read as FTS syntax
    (operators, column filters, NEAR, prefixes).
    """
    return " ".join('"{}"'.format(term.replace('"', '""')) for term in terms)


@bp.route("/search")
@cached_page(args=("q", "page"))
def search():
    """Show the posts matching ?q=, best match first, a page at a time."""
    q = request.args.get("q", "")
    terms = search_terms(q)
    if not terms:
        return render_template("search/search.html", q=q, page=None, terms=terms)
    return render_post_list(
        "search/search.html", SEARCH_QUERY, (match_expression(terms),), q=q, terms=terms
    )
