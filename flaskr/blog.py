"""Posts: the index, post and author pages, and writing, editing and deleting one's own posts."""

import functools
import re
import unicodedata

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.routing import BaseConverter

from .admin import log_action
from .auth import find_user, login_required
from .caching import cached_page
from .db import get_db, transaction
from .forms import BODY_MAX, TITLE_MAX, FormError, text_field
from .pagination import paginate
from .tags import TAGGED_NEWEST_FIRST, find_tag, normalize, parse_tags, save_tags, with_tags
from .uploads import delete_image, image_size, read_image, stored_image

bp = Blueprint("blog", __name__)

# The words after /<id>/ that name an action on the post (the tutorial's URLs among
# them): never a slug, so that a GET of /<id>/delete stays a 405, not a redirect.
ACTIONS = ("update", "delete", "comment", "like", "write-comment")
# Characters of a slug at most: enough to recognise a title, short enough to share.
SLUG_MAX = 80


class SlugConverter(BaseConverter):
    """A post URL's last part, the slug of its title: any segment but an action's name."""

    regex = r"(?!(?:{})(?:/|$))[^/]+".format("|".join(ACTIONS))


# Before the routes below: their rules use the converter.
bp.record_once(lambda state: state.app.url_map.converters.setdefault("slug", SlugConverter))


# Titles repeat on every list page and feed; their slugs are kept.
@functools.lru_cache(maxsize=4096)
def slugify(title):
    """Return the slug of a post title: its letters and digits, lower case, joined by "-"."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = "-".join(re.findall(r"[a-z0-9]+", ascii_title.lower()))
    if len(slug) > SLUG_MAX:
        slug = slug[: SLUG_MAX + 1].rsplit("-", 1)[0] if "-" in slug[:SLUG_MAX] else slug[:SLUG_MAX]
    if not slug or slug in ACTIONS:
        slug = f"{slug}-post".lstrip("-")
    return slug


# Posts with their author's name and their like and comment counts (each counted on its
# own index); list pages add a WHERE clause and an order.
POST_QUERY = (
    "SELECT p.id, p.title, p.body, p.created, p.updated, p.author_id, p.image, u.username,"
    " u.display_name, u.avatar AS author_avatar, u.bio AS author_bio,"
    " (SELECT COUNT(*) FROM post_like l WHERE l.post_id = p.id) AS likes,"
    " (SELECT COUNT(*) FROM comment c WHERE c.post_id = p.id) AS comments"
    " FROM post p JOIN user u ON p.author_id = u.id"
)
NEWEST_FIRST = " ORDER BY p.created DESC, p.id DESC"

# The list pages' queries, each walking an index (tests/test_query_plans.py checks).
INDEX_QUERY = POST_QUERY + NEWEST_FIRST
AUTHOR_QUERY = POST_QUERY + " WHERE p.author_id = ?" + NEWEST_FIRST
TAG_PAGE_QUERY = POST_QUERY + TAGGED_NEWEST_FIRST
# The newest posts' titles, that error pages offer.
NEWEST_QUERY = "SELECT p.id, p.title, p.created FROM post p" + NEWEST_FIRST + " LIMIT ?"


def newest_posts(limit):
    """Return the id, title and creation time of the newest posts, at most limit of them."""
    return get_db().execute(NEWEST_QUERY, (limit,)).fetchall()


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


@bp.app_template_global()
def post_url(post, **values):
    """Return the URL of a post's page (values add query arguments or an _anchor)."""
    return url_for("blog.detail", id=post["id"], slug=slugify(post["title"]), **values)


@bp.app_template_global()
def post_image_size(name):
    """Return a post image's (width, height) for its img element, or None."""
    return stored_image_size(current_app.config["UPLOAD_FOLDER"], name)


# Stored images never change (a new upload gets a new name), so their sizes are kept;
# the folder is part of the key because tests run several sites in one process.
@functools.lru_cache(maxsize=4096)
def stored_image_size(folder, name):
    """Return image_size(name) for the site whose images are in folder."""
    return image_size(name)


def get_author(username):
    """Return the user with this name (any case); aborts with 404 if there is none."""
    user = find_user(username)
    if user is None:
        abort(404, f"There is no user {username}.")
    return user


def get_tag_id(name):
    """Return the id of the tag with this name (any case); aborts with 404 if no post has it."""
    tag_id = find_tag(name)
    if tag_id is None:
        abort(404, f"No post is tagged '{normalize(name)}'.")
    return tag_id


def read_post_form():
    """Return (title, body, image, error) from the submitted create or update form.

    image is a new upload as (bytes, extension), or None when none was sent.
    """
    try:
        title = text_field("title", "Title", TITLE_MAX, "Title is required.")
        body = text_field("body", "Body", BODY_MAX)
        image = read_image(request.files.get("image"))
    except FormError as e:
        return None, None, None, str(e)
    return title, body, image, None


def read_tags_form():
    """Return (tag names, error) from the submitted create or update form."""
    return parse_tags(request.form.get("tags", ""))


def render_post_list(template, query, params=(), **context):
    """Render a list page: the requested page of query's posts, each with its tags."""
    page = paginate(get_db(), query, params)
    page.items = with_tags(page.items)
    return render_template(template, page=page, **context)


@bp.route("/")
@cached_page(args=("page",))
def index():
    """Show the newest posts, a page at a time."""
    return render_post_list("blog/index.html", INDEX_QUERY)


@bp.route("/<int:id>", defaults={"slug": None})
@bp.route("/<int:id>/<slug:slug>")
@cached_page(args=("comments",))
def detail(id, slug):
    """Show one post in full, with its tags, at its URL with the slug of its title.

    The bare /<id> and outdated slugs (the title was edited) move there for good.
    """
    (post,) = with_tags([get_post(id, check_author=False)])
    if slug != slugify(post["title"]):
        return redirect(post_url(post, comments=request.args.get("comments")), 301)
    return render_template("blog/detail.html", post=post)


@bp.route("/<int:id>/write-comment")
@login_required
def write_comment(id):
    """Lead to a post's comment form; a visitor logs in first and comes back to it."""
    return redirect(post_url(get_post(id, check_author=False), _anchor="add-comment"))


@bp.route("/user/<username>")
@cached_page(args=("page",))
def author(username):
    """Show one author's posts (name in any case), newest first, a page at a time."""
    user = get_author(username)
    return render_post_list("blog/author.html", AUTHOR_QUERY, (user["id"],), author=user)


@bp.route("/tag/<name>")
@cached_page(args=("page",))
def tag(name):
    """Show the posts with this tag (any case), newest first, a page at a time."""
    tag_id = get_tag_id(name)
    return render_post_list("blog/tag.html", TAG_PAGE_QUERY, (tag_id,), name=normalize(name))


@bp.route("/create", methods=("GET", "POST"))
@login_required
def create():
    """Write a new post as the current user."""
    if request.method == "POST":
        title, body, image, error = read_post_form()
        tags, tags_error = read_tags_form()
        error = error or tags_error
        if error is None:
            with stored_image(image) as image_name, transaction() as db:
                cursor = db.execute(
                    "INSERT INTO post (title, body, author_id, image) VALUES (?, ?, ?, ?)",
                    (title, body, g.user["id"], image_name),
                )
                save_tags(db, cursor.lastrowid, tags)
            return redirect(url_for("blog.index"))
        flash(error)
        return render_template("blog/create.html"), 400
    return render_template("blog/create.html")


@bp.route("/<int:id>/update", methods=("GET", "POST"))
@login_required
def update(id):
    """Edit one of the current user's posts."""
    (post,) = with_tags([get_post(id)])
    if request.method == "POST":
        title, body, image, error = read_post_form()
        tags, tags_error = read_tags_form()
        error = error or tags_error
        if error is None:
            with stored_image(image) as new_image, transaction() as db:
                # Read again under the write lock: an edit committed since the first
                # read may have replaced the image, and its file is gone.
                current = get_post(id)
                kept = None if request.form.get("remove_image") else current["image"]
                image_name = new_image or kept
                db.execute(
                    "UPDATE post SET title = ?, body = ?, image = ?, updated = CURRENT_TIMESTAMP"
                    " WHERE id = ?",
                    (title, body, image_name, id),
                )
                save_tags(db, id, tags)
            # Only once the post no longer names it, as read inside the transaction.
            if current["image"] != image_name:
                delete_image(current["image"])
            return redirect(url_for("blog.index"))
        flash(error)
        return render_template("blog/update.html", post=post), 400
    return render_template("blog/update.html", post=post)


@bp.route("/<int:id>/delete", methods=("POST",))
@login_required
def delete(id):
    """Delete one of the current user's posts (an admin: any post)."""
    with transaction() as db:
        # Read under the write lock, so the image deleted is the one the post has now.
        # An admin may delete anyone's post (to remove spam), never edit it.
        post = get_post(id, check_author=g.user["role"] != "admin")
        db.execute("DELETE FROM post WHERE id = ?", (id,))
    delete_image(post["image"])
    if post["author_id"] != g.user["id"]:
        log_action("deleted the post", f"{id} by {post['username']}")
    return redirect(url_for("blog.index"))
