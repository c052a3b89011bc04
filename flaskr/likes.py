"""Likes: one per user per post, toggled by the user."""

from flask import Blueprint, g, redirect

from .auth import login_required
from .blog import get_post, post_url
from .caching import shared
from .db import get_db, transaction

bp = Blueprint("likes", __name__)


@bp.app_template_global()
def liked(post_id):
    """Whether the logged-in user likes the post (kept until the next commit: caching.shared)."""
    user_id = g.user["id"]
    row = shared(
        ("liked", post_id, user_id),
        lambda: (
            get_db()
            .execute(
                "SELECT 1 FROM post_like WHERE post_id = ? AND user_id = ?", (post_id, user_id)
            )
            .fetchone()
        ),
    )
    return row is not None


@bp.route("/<int:id>/like", methods=("POST",))
@login_required
def toggle(id):
    """Like the post, or take the like back if the user already likes it."""
    with transaction() as db:
        post = get_post(id, check_author=False)
        removed = db.execute(
            "DELETE FROM post_like WHERE post_id = ? AND user_id = ?", (id, g.user["id"])
        ).rowcount
        if not removed:
            db.execute("INSERT INTO post_like (post_id, user_id) VALUES (?, ?)", (id, g.user["id"]))
    return redirect(post_url(post, _anchor="likes"))
