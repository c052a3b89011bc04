"""Search: /search?q=, full-text search of titles and bodies.

SQLite searches its FTS5 index, PostgreSQL a tsvector column with a GIN index; the two
differ only in the queries of QUERIES, and both bound the work of a search the same way.
"""

import re

from flask import Blueprint, abort, current_app, render_template, request

from .blog import POST_QUERY
from .caching import cached_page, shared
from .db import backend, get_db
from .pagination import Page, page_number
from .tags import with_tags

bp = Blueprint("search", __name__)

# Words past this many are ignored: more never narrows a search usefully, and each one
# costs an index lookup.
MAX_TERMS = 32

# The work of one search is bounded whatever the query and however many posts there are.
# Only the newest MAX_RANKED matches are ranked (one more is read to know there are more):
# the full-text index hands them over newest first and stops there.
MAX_RANKED = 1000
# Ranking reads at most this many rows of the index. The ranking words may match posts that
# lack the other words; past this many, the remaining matches keep their newest-first order.
MAX_RANK_ROWS = 4000
# bm25() counts, once per search, every post holding each ranking word: only the rarest
# few words rank, and a word in more than half the posts (which bm25 scores as almost
# nothing) never does. Every word still has to match.
MAX_RANKING_TERMS = 8
# How rare a word is, estimated from the newest posts: a handful of bounded index reads.
RARITY_SAMPLE = 200

SAMPLE_QUERY = "SELECT MIN(id), COUNT(*) FROM (SELECT id FROM post ORDER BY id DESC LIMIT ?) s"
# Each backend's full-text queries; each takes a match expression (match_expression).
QUERIES = {
    "sqlite": {
        # The newest matches by post id (posts are numbered as they are written).
        "candidates": "SELECT rowid FROM post_fts WHERE post_fts MATCH ?"
        " ORDER BY rowid DESC LIMIT ?",
        "sample_count": "SELECT COUNT(*) FROM post_fts WHERE post_fts MATCH ? AND rowid >= ?",
        # FTS5's bm25(): lower is better. Only the rows between the oldest and newest candidate.
        "rank": "SELECT rowid, bm25(post_fts) FROM post_fts"
        " WHERE post_fts MATCH ? AND rowid BETWEEN ? AND ? ORDER BY rowid DESC LIMIT ?",
    },
    "postgresql": {
        "candidates": "SELECT id FROM post WHERE search @@ plainto_tsquery('flaskr_search', ?)"
        " ORDER BY id DESC LIMIT ?",
        "sample_count": "SELECT COUNT(*) FROM post"
        " WHERE search @@ plainto_tsquery('flaskr_search', ?) AND id >= ?",
        # ts_rank(), negated so that lower is better here too.
        "rank": "SELECT id, -ts_rank(search, q) FROM post, plainto_tsquery('flaskr_search', ?) q"
        " WHERE search @@ q AND id BETWEEN ? AND ? ORDER BY id DESC LIMIT ?",
    },
}

# The posts readers may not see yet (drafts and scheduled posts are in the full-text index):
# the drafts among a range of ids, and the scheduled posts, each read from a small index
# however many posts match.
DRAFT_IDS_QUERY = "SELECT id FROM post WHERE draft = 1 AND id BETWEEN ? AND ?"
SCHEDULED_IDS_QUERY = "SELECT id FROM post WHERE draft = 0 AND created > CURRENT_TIMESTAMP"

# One page of results, each post found by its id.
POSTS_BY_ID_QUERY = POST_QUERY + " WHERE p.id IN ({})"


def search_terms(text):
    """Return the distinct words of a query (ignoring case), at most MAX_TERMS of them."""
    words = {}
    for word in re.findall(r"\w+", text):
        words.setdefault(word.casefold(), word)
    return list(words.values())[:MAX_TERMS]


def match_expression(kind, terms):
    """Return the full-text query that finds posts containing every term.

    On SQLite each term becomes a quoted FTS string, so no user text is read as FTS
    syntax (operators, column filters, NEAR, prefixes); PostgreSQL's plainto_tsquery
    reads plain words only, all of them required.
    """
    if kind == "postgresql":
        return " ".join(terms)
    return " ".join('"{}"'.format(term.replace('"', '""')) for term in terms)


def ranking_terms(db, terms):
    """Return the rarest terms (at most MAX_RANKING_TERMS), leaving out those in most posts."""
    oldest, sample = db.execute(SAMPLE_QUERY, (RARITY_SAMPLE,)).fetchone()
    kind = backend(db)
    counts = {
        term: db.execute(
            QUERIES[kind]["sample_count"], (match_expression(kind, [term]), oldest)
        ).fetchone()[0]
        for term in terms
    }
    rare = [term for term in terms if counts[term] * 2 <= sample]
    return sorted(rare, key=counts.get)[:MAX_RANKING_TERMS]


def ranked_matches(db, terms):
    """Return (post ids best match first, whether more posts match than were ranked).

    The candidates are the newest MAX_RANKED matches; equal scores keep newest first.
    """
    kind = backend(db)
    queries = QUERIES[kind]
    ids = [
        row[0]
        for row in db.execute(
            queries["candidates"], (match_expression(kind, terms), MAX_RANKED + 1)
        )
    ]
    if ids:
        drafts = db.execute(DRAFT_IDS_QUERY, (ids[-1], ids[0])).fetchall()
        hidden = {row[0] for row in drafts + db.execute(SCHEDULED_IDS_QUERY).fetchall()}
        ids = [post_id for post_id in ids if post_id not in hidden]
    more = len(ids) > MAX_RANKED
    ids = ids[:MAX_RANKED]
    ranking = ranking_terms(db, terms) if ids else []
    if not ranking:
        return ids, more
    rows = db.execute(
        queries["rank"], (match_expression(kind, ranking), ids[-1], ids[0], MAX_RANK_ROWS)
    ).fetchall()
    scores = dict(rows)
    return sorted(ids, key=lambda post_id: scores.get(post_id, 0.0)), more


def posts_by_id(db, ids):
    """Return the posts with these ids, in the order given, each with its tags."""
    if not ids:
        return []
    rows = db.execute(POSTS_BY_ID_QUERY.format(", ".join("?" * len(ids))), ids).fetchall()
    order = {post_id: k for k, post_id in enumerate(ids)}
    return with_tags(sorted(rows, key=lambda row: order[row["id"]]))


@bp.route("/search")
@cached_page(args=("q", "page"))
def search():
    """Show the posts matching ?q=, best match first, a page at a time."""
    q = request.args.get("q", "")
    terms = search_terms(q)
    if not terms:
        return render_template("search/search.html", q=q, page=None, terms=terms)
    number = page_number()
    # The matches and each page of them are read once for every reader until the next
    # commit (caching.shared).
    ids, more = shared(("search", tuple(terms)), lambda: ranked_matches(get_db(), terms))
    per_page = current_app.config["POSTS_PER_PAGE"]
    start = (number - 1) * per_page
    shown = ids[start : start + per_page]
    if number > 1 and not shown:
        abort(404, "There is no such page.")
    posts = shared(("search page", tuple(shown)), lambda: posts_by_id(get_db(), shown))
    page = Page(posts, number, number > 1, len(ids) > start + per_page)
    return render_template(
        "search/search.html",
        q=q,
        page=page,
        terms=terms,
        matches=len(ids),
        more=more,
        limit=MAX_RANKED,
    )
