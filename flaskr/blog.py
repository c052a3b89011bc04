"""Posts: the index and writing, editing and deleting one's own posts."""

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from .auth import login_required
from .db import get_db, transaction
from .forms import BODY_MAX, TITLE_MAX, FormError, text_field
from .pagination import paginate

bp = Blueprint("blog", __name__)

# Posts with their author's name, newest first; list pages add a WHERE clause.
POST_QUERY = (
    "SELECT p.id, p.title, p.body, p.created, p.author_id, u.username"
    " FROM post p JOIN user u ON p.author_id = u.id"
)
NEWEST_FIRST = " ORDER BY p.created DESC, p.id DESC"


def get_post(id, check_author=True):
    """Return the post with this id and its author's name.

    Aborts with 404 if there is no such post and, when check_author is true, with 403
    if the current user is not its author.
    """
    post = get_db().execute(f"{POST_QUERY} WHERE p.id = ?", (id,)).fetchone()
    if post is None:
        abort(404, f"Post id {id} doesn't exist.")
    if check_author and post["author_id"] != g.user["id"]:
        abort(403, "Only the author can change this post.")
    return post


def read_post_form():
    """Return (title, body, error) from the submitted create or update form."""
    try:
        title = text_field("title", "Title", TITLE_MAX, "Title is required.")
        body = text_field("body", "Body", BODY_MAX)
    except FormError as e:
        return None, None, str(e)
    return title, body, None


@bp.route("/")
def index():
    """Show the newest posts, a page at a time."""
    page = paginate(get_db(), POST_QUERY + NEWEST_FIRST)
    return render_template("blog/index.html", page=page)


@bp.route("/create", methods=("GET", "POST"))
@login_required
def create():
    """Write a new post as the current user."""
    if request.method == "POST":
        title, body, error = read_post_form()
        if error is None:
            with transaction() as db:
                db.execute(
                    "INSERT INTO post (title, body, author_id) VALUES (?, ?, ?)",
                    (title, body, g.user["id"]),
                )
            return redirect(url_for("blog.index"))
        flash(error)
        return render_template("blog/create.html"), 400
    return render_template("blog/create.html")


@bp.route("/<int:id>/update", methods=("GET", "POST"))
@login_required
def update(id):
    """Edit one of the current user's posts."""
    post = get_post(id)
    if request.method == "POST":
        title, body, error = read_post_form()
        if error is None:
            with transaction() as db:
                db.execute("UPDATE post SET title = ?, body = ? WHERE id = ?", (title, body, id))
            return redirect(url_for("blog.index"))
        flash(error)
        return render_template("blog/update.html", post=post), 400
    return render_template("blog/update.html", post=post)


@bp.route("/<int:id>/delete", methods=("POST",))
@login_required
def delete(id):
    """Delete one of the current user's posts."""
    get_post(id)
    with transaction() as db:
        db.execute("DELETE FROM post WHERE id = ?", (id,))
    return redirect(url_for("blog.index"))
