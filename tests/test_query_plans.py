"""Every list page walks an index: its cost must not grow with the number of posts."""

from datetime import timedelta

import pytest
from listing import add_posts

from flaskr.blog import AUTHOR_QUERY, INDEX_QUERY, NEWEST_QUERY, TAG_PAGE_QUERY
from flaskr.db import get_db, transaction
from flaskr.feeds import FEED_QUERY
from flaskr.search import SEARCH_QUERY
from flaskr.tags import save_tags

# (name, query as run by paginate or the feed, parameters, the scans it may contain)
QUERIES = [
    # The index walks post_created backwards and stops after a page.
    ("index", INDEX_QUERY + " LIMIT ? OFFSET ?", (6, 0), {"SCAN p USING INDEX post_created"}),
    ("feed", FEED_QUERY, (), {"SCAN p USING INDEX post_created"}),
    ("newest on error pages", NEWEST_QUERY, (5,), {"SCAN p USING INDEX post_created"}),
    ("author", AUTHOR_QUERY + " LIMIT ? OFFSET ?", (1, 6, 0), set()),
    ("tag", TAG_PAGE_QUERY + " LIMIT ? OFFSET ?", (1, 6, 0), set()),
    # FTS5 finds the matches in its index and ranks them itself (bm25).
    ("search", SEARCH_QUERY + " LIMIT ? OFFSET ?", ('"word"', 6, 0), {"SCAN f VIRTUAL TABLE"}),
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
@pytest.mark.parametrize(("name", "query", "params", "allowed_scans"), QUERIES)
def test_list_pages_walk_an_index(app, posts, name, query, params, allowed_scans):
    with app.app_context():
        if posts:
            fill(app, posts)
        steps = plan(query, params)
    assert not [s for s in steps if "TEMP B-TREE" in s], (name, steps)
    scans = [s for s in steps if s.startswith("SCAN")]
    assert all(any(s.startswith(a) for a in allowed_scans) for s in scans), (name, steps)
    # Every other table is reached by a key: one lookup per row of the page (the like and
    # comment counts are subqueries that search their own index).
    assert all(s.startswith(("SCAN", "SEARCH", "CORRELATED SCALAR SUBQUERY")) for s in steps), (
        name,
        steps,
    )


def test_the_search_is_driven_by_the_full_text_index(app):
    with app.app_context():
        steps = plan(SEARCH_QUERY, ('"word"',))
    assert steps[0].startswith("SCAN f VIRTUAL TABLE INDEX")
    assert "SEARCH p USING INTEGER PRIMARY KEY (rowid=?)" in steps


def test_the_tag_page_walks_its_tag_index(app):
    with app.app_context():
        steps = plan(TAG_PAGE_QUERY, (1,))
    assert steps[0] == "SEARCH pt USING COVERING INDEX post_tag_tag_created (tag_id=?)"
