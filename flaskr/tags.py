"""Tags: reading and checking a post's tags, storing them, and the /tag/<name> pages."""

import re

from flask import Blueprint, abort, render_template

from .db import get_db
from .forms import TAG_MAX, TAGS_MAX
from .pagination import paginate

bp = Blueprint("tags", __name__)

MAX_TAGS = TAGS_MAX
MAX_TAG_LENGTH = TAG_MAX
# Letters and digits of any script, spaces, '-', '_' and '.'; starting with a letter or
# digit, so that no tag makes a URL like /tag/.. or looks like an option.
TAG_PATTERN = re.compile(r"[^\W_][\w .-]*")

# A tag's posts, newest first, walking the index post_tag_tag_created. The columns are
# blog.POST_QUERY's (a test checks that they stay the same), so the post card can show them.
TAG_PAGE_QUERY = (
    "SELECT p.id, p.title, p.body, p.created, p.updated, p.author_id, u.username"
    " FROM post p JOIN user u ON p.author_id = u.id"
    " JOIN post_tag pt ON pt.post_id = p.id"
    " WHERE pt.tag_id = ? ORDER BY pt.created DESC, pt.post_id DESC"
)


def parse_tags(text):
    """Return (names, error) for the comma-separated tags of a form.

    Names are trimmed, lowercased, with inner runs of spaces made one, without
    duplicates, in the order given; empty entries are skipped. error is None or why
    the list is refused.
    """
    names = []
    for entry in text.split(","):
        name = " ".join(entry.split()).lower()
        if not name or name in names:
            continue
        if len(name) > MAX_TAG_LENGTH:
            return [], f"Tags must be at most {MAX_TAG_LENGTH} characters: '{name[:40]}…'."
        if not TAG_PATTERN.fullmatch(name):
            return [], (
                f"Tag '{name}' is not allowed: use letters, digits, spaces, '-', '_' and '.',"
                " starting with a letter or digit."
            )
        names.append(name)
        if len(names) > MAX_TAGS:
            return [], f"A post can have at most {MAX_TAGS} tags."
    return names, None


def save_tags(db, post_id, names):
    """Give the post exactly these tags; call inside the transaction that writes the post."""
    db.execute("DELETE FROM post_tag WHERE post_id = ?", (post_id,))
    db.executemany(
        "INSERT INTO tag (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
        [(name,) for name in names],
    )
    db.executemany(
        "INSERT INTO post_tag (post_id, tag_id, created)"
        " SELECT p.id, t.id, p.created FROM post p, tag t WHERE p.id = ? AND t.name = ?",
        [(post_id, name) for name in names],
    )


def tags_by_post(post_ids):
    """Return {post id: [tag names, sorted]} for these posts (one query)."""
    found = {id: [] for id in post_ids}
    if found:
        placeholders = ", ".join("?" * len(found))
        rows = get_db().execute(
            "SELECT pt.post_id, t.name FROM post_tag pt JOIN tag t ON t.id = pt.tag_id"
            f" WHERE pt.post_id IN ({placeholders})",
            tuple(found),
        )
        for post_id, name in rows:
            found[post_id].append(name)
    return {id: sorted(names) for id, names in found.items()}


def with_tags(posts):
    """Return the posts as dicts, each with its sorted tag names under "tags"."""
    posts = [dict(post) for post in posts]
    tags = tags_by_post([post["id"] for post in posts])
    for post in posts:
        post["tags"] = tags[post["id"]]
    return posts


@bp.route("/tag/<name>")
def tag(name):
    """Show the posts with this tag (any case), newest first, a page at a time."""
    name = " ".join(name.split()).lower()
    found = get_db().execute("SELECT id FROM tag WHERE name = ?", (name,)).fetchone()
    if found is None:
        abort(404, f"No post is tagged '{name}'.")
    page = paginate(get_db(), TAG_PAGE_QUERY, (found["id"],))
    page.items = with_tags(page.items)
    return render_template("tags/tag.html", page=page, name=name)
