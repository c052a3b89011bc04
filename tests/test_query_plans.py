"""Every list page walks an index: its cost must not grow with the number of posts.

SQLite's plans, as EXPLAIN QUERY PLAN names them.
"""

import re
from datetime import timedelta

import pytest
from listing import add_posts

from flaskr.blog import AUTHOR_QUERY, INDEX_QUERY, NEWEST_QUERY, TAG_PAGE_QUERY
from flaskr.caching import NEXT_PUBLICATION_QUERY
from flaskr.db import get_db, transaction
from flaskr.feeds import FEED_SIZE
from flaskr.search import (
    DRAFT_IDS_QUERY,
    POSTS_BY_ID_QUERY,
    SAMPLE_QUERY,
    SCHEDULED_IDS_QUERY,
)
from flaskr.search import QUERIES as SEARCH_QUERIES
from flaskr.tags import save_tags

pytestmark = pytest.mark.sqlite_only

# The published posts' partial index, from the newest whose time has come backwards.
PUBLISHED_WALK = "SEARCH p USING INDEX post_published (created<?)"
# (name, query as run by paginate or the feed, parameters, the scans it may contain,
# the step that reads the list in order from an index)
QUERIES = [
    # The index walks post_published backwards and stops after a page.
    ("index", INDEX_QUERY + " LIMIT ? OFFSET ?", (6, 0), set(), PUBLISHED_WALK),
    ("feed", f"{INDEX_QUERY} LIMIT {FEED_SIZE}", (), set(), PUBLISHED_WALK),
    ("newest on error pages", NEWEST_QUERY, (5,), set(), PUBLISHED_WALK),
    (
        "author",
        AUTHOR_QUERY + " LIMIT ? OFFSET ?",
        (1, 6, 0),
        set(),
        "SEARCH p USING INDEX post_author_published (author_id=? AND created<?)",
    ),
    (
        "tag",
        TAG_PAGE_QUERY + " LIMIT ? OFFSET ?",
        (1, 6, 0),
        set(),
        "SEARCH pt USING COVERING INDEX post_tag_tag_created (tag_id=? AND created<?)",
    ),
    # A page of search results: its posts found by id (test below for the matching).
    (
        "search",
        POSTS_BY_ID_QUERY.format("?, ?"),
        (1, 2),
        set(),
        "SEARCH p USING INTEGER PRIMARY KEY (rowid=?)",
    ),
    # Which search matches are hidden: the drafts in their id range, the scheduled posts.
    (
        "drafts among the matches",
        DRAFT_IDS_QUERY,
        (1, 2),
        set(),
        "SEARCH post USING INDEX post_drafts (id>? AND id<?)",
    ),
    (
        "scheduled posts",
        SCHEDULED_IDS_QUERY,
        (),
        set(),
        "SEARCH post USING INDEX post_published (created>?)",
    ),
    # The page cache's next publication: the first scheduled post in the partial index.
    (
        "next publication",
        NEXT_PUBLICATION_QUERY,
        (),
        set(),
        "SEARCH post USING INDEX post_published (created>?)",
    ),
]


def plan(query, params):
    return [row["detail"] for row in get_db().execute(f"EXPLAIN QUERY PLAN {query}", params)]


def fill(app, n):
    """Add n posts by three authors, every tenth tagged, then gather planner statistics."""
    db = get_db()
    db.execute("INSERT INTO user (username, password) VALUES ('third', 'x')")
    add_posts(app, n, authors=(1, 2, 3), body="word body", step=timedelta(seconds=1))
    with transaction(db):
        for (post_id,) in db.execute("SELECT id FROM post WHERE id % 10 = 0").fetchall():
            save_tags(db, post_id, ["tenth", f"own{post_id}"])
    db.execute("ANALYZE")


@pytest.mark.parametrize("posts", [0, 3000])
@pytest.mark.parametrize(("name", "query", "params", "allowed_scans", "walk"), QUERIES)
def test_list_pages_walk_an_index(app, posts, name, query, params, allowed_scans, walk):
    with app.app_context():
        if posts:
            fill(app, posts)
        steps = plan(query, params)
    assert walk in steps, (name, steps)
    assert not [s for s in steps if "TEMP B-TREE" in s], (name, steps)
    scans = [s for s in steps if s.startswith("SCAN")]
    assert all(any(s.startswith(a) for a in allowed_scans) for s in scans), (name, steps)
    # Every other table is reached by a key: one lookup per row of the page (the like and
    # comment counts are subqueries that search their own index).
    assert all(s.startswith(("SCAN", "SEARCH", "CORRELATED SCALAR SUBQUERY")) for s in steps), (
        name,
        steps,
    )


# (query, parameters, the rowid bounds the full-text index must apply itself): the matches
# come from the index in post id order, newest first, so a LIMIT stops the reading early.
SEARCH_QUERIES = [
    (SEARCH_QUERIES["sqlite"]["candidates"], ('"word"', 1001), ""),
    (SEARCH_QUERIES["sqlite"]["sample_count"], ('"word"', 2800), ">"),
    (SEARCH_QUERIES["sqlite"]["rank"], ('"word"', 1000, 2000, 4000), "><"),
]


def test_the_search_reads_the_full_text_index_in_order(app):
    with app.app_context():
        fill(app, 3000)
        plans = [plan(query, params) for query, params, _ in SEARCH_QUERIES]
        sample = plan(SAMPLE_QUERY, (200,))
    for steps, (_, _, bounds) in zip(plans, SEARCH_QUERIES, strict=True):
        assert len(steps) == 1, steps  # no sorting step: the index gives the order
        index, _, idx_str = steps[0].rpartition(":")
        assert index.startswith("SCAN post_fts VIRTUAL TABLE INDEX"), steps
        # "M" and a column number: MATCH against the whole table (every column).
        assert re.fullmatch(r"M\d+" + re.escape(bounds), idx_str), steps
    # The rarity sample walks the newest posts by id, and stops after the sample.
    assert "SCAN post" in sample
    assert not [s for s in sample if "TEMP B-TREE" in s or "USING INDEX" in s], sample


def test_the_tag_page_walks_its_tag_index(app):
    with app.app_context():
        steps = plan(TAG_PAGE_QUERY, (1,))
    # Its posts whose time has come (created is bound by now), newest first.
    walk = "SEARCH pt USING COVERING INDEX post_tag_tag_created (tag_id=? AND created<?)"
    assert steps[0] == walk
