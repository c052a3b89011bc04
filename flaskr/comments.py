"""Comments: writing and deleting comments on posts, and listing a post's comments."""

from flask import Blueprint, abort, g, redirect, render_template

from .admin import log_action
from .auth import login_required
from .blog import get_post, post_url
from .caching import shared
from .db import get_db, inserted_id, transaction
from .forms import COMMENT_MAX, FormError, text_field
from .pagination import Page, page_number
from .tags import with_tags

bp = Blueprint("comments", __name__)

# Comments on one page of a post: the newest first, older ones through ?comments=N.
COMMENTS_PER_PAGE = 50

# A page of a post's comments, newest first (walking the comment_post_created index
# backwards); shown oldest first. An imported comment by someone without an account has
# no author_id and shows the name it was written under.
COMMENT_PAGE_QUERY = (
    "SELECT c.id, c.body, c.created, c.author_id, COALESCE(u.username, c.author_name) AS username"
    " FROM comment c LEFT JOIN user u ON u.id = c.author_id"
    " WHERE c.post_id = ? ORDER BY c.created DESC, c.id DESC LIMIT ? OFFSET ?"
)


@bp.app_template_global()
def comment_page(post):
    """Return the page of post's comments named by ?comments=N (1: the newest), oldest first.

    has_prev says newer comments exist, has_next older ones; a page past the last is 404.
    One row more than a page is read to know whether older comments exist. Read once for
    every reader until the next commit (caching.shared).
    """
    number = page_number("comments")
    rows = shared(
        ("comments", post["id"], number),
        lambda: (
            get_db()
            .execute(
                COMMENT_PAGE_QUERY,
                (post["id"], COMMENTS_PER_PAGE + 1, (number - 1) * COMMENTS_PER_PAGE),
            )
            .fetchall()
        ),
    )
    if number > 1 and not rows:
        abort(404, "There is no such page of comments.")
    newest = rows[:COMMENTS_PER_PAGE]
    return Page(newest[::-1], number, number > 1, len(rows) > COMMENTS_PER_PAGE)


def get_comment(id):
    """Return a comment the current user may delete: its own, one on its own post, any for an admin.

    Aborts with 404 if there is no such comment and 403 for anyone else.
    """
    comment = (
        get_db()
        .execute(
            "SELECT c.id, c.post_id, c.author_id, p.author_id AS post_author_id"
            " FROM comment c JOIN post p ON p.id = c.post_id WHERE c.id = ?",
            (id,),
        )
        .fetchone()
    )
    if comment is None:
        abort(404, f"Comment id {id} doesn't exist.")
    if g.user["id"] not in (comment["author_id"], comment["post_author_id"]) and (
        g.user["role"] != "admin"
    ):
        abort(403, "Only the comment's author or the post's author can delete this comment.")
    return comment


@bp.route("/<int:id>/comment", methods=("POST",))
@login_required
def add(id):
    """Comment on a post as the current user."""
    try:
        body = text_field("body", "Comment", COMMENT_MAX, "Comment is required.")
        if not body.strip():
            raise FormError("Comment is required.")
    except FormError as e:
        # The post's page again, the error beside the comment field and the text kept.
        (post,) = with_tags([get_post(id, check_author=False)])
        return render_template("blog/detail.html", post=post, comment_error=str(e)), 400
    with transaction() as db:
        post = get_post(id, check_author=False)
        comment_id = inserted_id(
            db.execute(
                "INSERT INTO comment (post_id, author_id, body) VALUES (?, ?, ?) RETURNING id",
                (id, g.user["id"], body),
            )
        )
    return redirect(post_url(post, _anchor=f"comment-{comment_id}"))


@bp.route("/comment/<int:id>/delete", methods=("POST",))
@login_required
def delete(id):
    """Delete a comment, as its author or as the author of its post."""
    comment = get_comment(id)
    with transaction() as db:
        db.execute("DELETE FROM comment WHERE id = ?", (id,))
    if g.user["id"] not in (comment["author_id"], comment["post_author_id"]):
        log_action("deleted the comment", f"{id} on post {comment['post_id']}")
    return redirect(post_url(get_post(comment["post_id"], check_author=False), _anchor="comments"))
