"""Tags: reading and checking a post's tags, storing them, and finding a tag's posts."""

import re

from .db import get_db
from .forms import TAG_MAX, TAGS_MAX

# Letters and digits of any script, spaces, '-', '_' and '.'; starting with a letter or
# digit, so that no tag makes a URL like /tag/.. or looks like an option.
TAG_PATTERN = re.compile(r"[^\W_][\w .-]*")

# Appended to blog.POST_QUERY: a tag's posts, newest first, walking the index
# post_tag_tag_created (post_tag keeps a copy of each post's created time for it).
TAGGED_NEWEST_FIRST = (
    " JOIN post_tag pt ON pt.post_id = p.id"
    " WHERE pt.tag_id = ? AND pt.created <= CURRENT_TIMESTAMP AND p.draft = 0"
    " ORDER BY pt.created DESC, pt.post_id DESC"
)


def normalize(name):
    """Return a tag name as stored: lowercase, inner runs of spaces made one."""
    return " ".join(name.split()).lower()


def find_tag(name):
    """Return the id of the tag with this name (any case or spacing), or None."""
    row = get_db().execute("SELECT id FROM tag WHERE name = ?", (normalize(name),)).fetchone()
    return None if row is None else row["id"]


def parse_tags(text):
    """Return (names, error) for the comma-separated tags of a form.

    Names are trimmed, lowercased, with inner runs of spaces made one, without
    duplicates, in the order given; empty entries are skipped. error is None or why
    the list is refused.
    """
    names = []
    for entry in text.split(","):
        name = normalize(entry)
        if not name or name in names:
            continue
        if len(name) > TAG_MAX:
            return [], f"Tags must be at most {TAG_MAX} characters: '{name[:40]}…'."
        if not TAG_PATTERN.fullmatch(name):
            return [], (
                f"Tag '{name}' is not allowed: use letters, digits, spaces, '-', '_' and '.',"
                " starting with a letter or digit."
            )
        names.append(name)
        if len(names) > TAGS_MAX:
            return [], f"A post can have at most {TAGS_MAX} tags."
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
