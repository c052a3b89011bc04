"""Posts: the index, post and author pages, and writing, editing and deleting one's own posts."""

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

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
from markupsafe import Markup
from werkzeug.routing import BaseConverter

from .admin import log_action
from .auth import find_user, login_required
from .caching import cached_page, cached_url_for, remember, shared
from .db import get_db, inserted_id, transaction, utc_time
from .forms import BODY_MAX, IMAGE_ALT_MAX, TITLE_MAX, FormError, text_field
from .pagination import page_number, paginate
from .tags import TAGGED_NEWEST_FIRST, find_tag, normalize, parse_tags, save_tags, with_tags
from .uploads import (
    delete_image,
    drop_pending,
    image_size,
    keep_pending,
    pending_image,
    read_image,
    read_pending,
    save_image,
)

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


# Posts readers may see: not drafts, and their publication time has come. Written out
# (draft = 0) so that the planner picks the partial indexes made for it.
PUBLISHED = "p.draft = 0 AND p.created <= CURRENT_TIMESTAMP"

# Posts with their author's name and their like and comment counts (each counted on its
# own index); list pages add a WHERE clause and an order.
POST_QUERY = (
    "SELECT p.id, p.title, p.body, p.created, p.updated, p.author_id, p.image, p.image_alt,"
    f" p.draft, {PUBLISHED} AS public, u.username,"
    " u.display_name, u.avatar AS author_avatar, u.bio AS author_bio,"
    " (SELECT COUNT(*) FROM post_like l WHERE l.post_id = p.id) AS likes,"
    " (SELECT COUNT(*) FROM comment c WHERE c.post_id = p.id) AS comments"
    " FROM post p JOIN user u ON p.author_id = u.id"
)
NEWEST_FIRST = " ORDER BY p.created DESC, p.id DESC"

# The list pages' queries, each walking an index (tests/test_query_plans.py checks).
INDEX_QUERY = f"{POST_QUERY} WHERE {PUBLISHED}{NEWEST_FIRST}"
AUTHOR_QUERY = f"{POST_QUERY} WHERE p.author_id = ? AND {PUBLISHED}{NEWEST_FIRST}"
TAG_PAGE_QUERY = POST_QUERY + TAGGED_NEWEST_FIRST
# The newest posts' titles, that error pages offer.
NEWEST_QUERY = (
    f"SELECT p.id, p.title, p.created FROM post p WHERE {PUBLISHED}{NEWEST_FIRST} LIMIT ?"
)
# The author's drafts and scheduled posts, newest first.
DRAFTS_QUERY = (
    f"{POST_QUERY} WHERE p.author_id = ? AND NOT ({PUBLISHED})"
    " ORDER BY p.draft DESC, p.created DESC, p.id DESC"
)


def newest_posts(limit):
    """Return the id, title and creation time of the newest posts, at most limit of them."""
    return get_db().execute(NEWEST_QUERY, (limit,)).fetchall()


def get_post(id, check_author=True, to_show=False):
    """Return the post with this id and its author's name.

    Aborts with 404 if there is no such post, or if it is a draft or scheduled post and
    the current user is not its author (to everyone else it does not exist yet) and,
    when check_author is true, with 403 if the current user is not its author.
    to_show, for a page that only shows the post: with its tags, read once for every
    reader until the next commit (caching.shared); a write reads it afresh.
    """
    if to_show:
        post = shared(("post", id), lambda: read_post_to_show(id))
    else:
        post = get_db().execute(f"{POST_QUERY} WHERE p.id = ?", (id,)).fetchone()
    is_author = g.user is not None and post is not None and post["author_id"] == g.user["id"]
    if post is None or not (post["public"] or is_author):
        abort(404, f"Post id {id} doesn't exist.")
    if check_author and post["author_id"] != g.user["id"]:
        abort(403, "Only the author can change this post.")
    return post


def read_post_to_show(id):
    """Return the post with this id and its tags (as tags.with_tags), or None."""
    post = get_db().execute(f"{POST_QUERY} WHERE p.id = ?", (id,)).fetchone()
    return None if post is None else with_tags([post])[0]


@bp.app_template_global()
def post_url(post, **values):
    """Return the URL of a post's page (values add query arguments or an _anchor)."""
    return url_for("blog.detail", id=post["id"], slug=slugify(post["title"]), **values)


# Where the reader's own Edit link goes in a shared card (text of a post cannot hold it:
# the card escapes every "<" of it).
EDIT_LINK = "<!--EDIT_LINK-->"
# What a card shows of a post: the same values make the same card for every reader.
CARD_FIELDS = (
    "id", "title", "body", "created", "image", "image_alt", "username", "display_name",
    "likes", "comments",
)  # fmt: skip


# Only for the post's author.
EDIT_LINK_HTML = Markup('<a class="action" href="{}">Edit</a>')


@dataclass(frozen=True)
class Card:
    """A post's card as every reader sees it, in two parts: the reader's Edit link goes between."""

    head: Markup
    tail: Markup


def edit_link(post):
    """Return the Edit link of a post for its author, nothing for anyone else."""
    if g.user is None or g.user["id"] != post["author_id"]:
        return ""
    return EDIT_LINK_HTML.format(cached_url_for("blog.update", id=post["id"]))


@bp.app_template_global()
def card_for_reader(post, full=False, snippet=None, title=None):
    """Return the post's card (see _macros.html's post_card) with this reader's Edit link.

    The rest is rendered once per post version: it is kept by everything it shows (see
    caching.remember), so an edit, a like or a comment makes a new one, and no reader's
    own parts are in it.
    """
    key = (
        "card",
        request.script_root,
        full,
        snippet,
        title,
        post.get("image_url"),
        tuple(post["tags"]),
        *(post.get(name) for name in CARD_FIELDS),
    )

    def render():
        macro = current_app.jinja_env.get_template("_macros.html").module.reader_independent_card
        head, _, tail = str(macro(post, full, snippet, title)).partition(EDIT_LINK)
        return Card(Markup(head), Markup(tail))  # noqa: S704 (rendered by the template)

    card = remember(key, render)
    return Markup(f"{card.head}{edit_link(post)}{card.tail}")  # noqa: S704 (all markup already)


@bp.app_template_global()
def post_image_size(name):
    """Return a post image's (width, height) for its img element, or None."""
    return stored_image_size(current_app.config["DATABASE"], name)


# Stored images never change (a new upload gets a new name), so their sizes are kept;
# the database is part of the key because tests run several sites in one process.
@functools.lru_cache(maxsize=4096)
def stored_image_size(database, name):
    """Return image_size(name) for the site whose database this is."""
    return image_size(name)


def get_author(username):
    """Return the user with this name (any case); aborts with 404 if there is none."""
    user = shared(("author", username), lambda: find_user(username))
    if user is None:
        abort(404, f"There is no user {username}.")
    return user


def get_tag_id(name):
    """Return the id of the tag with this name (any case); aborts with 404 if no post has it."""
    tag_id = shared(("tag", normalize(name)), lambda: find_tag(name))
    if tag_id is None:
        abort(404, f"No post is tagged '{normalize(name)}'.")
    return tag_id


def read_post_form():
    """Return (fields, errors) from the submitted create or update form.

    fields has the title, body, image description, tags (a list), publish_at (stored
    form, or None) and image (a new upload as (bytes, extension), or None); errors maps
    each field that cannot be used to its message (the first to show is the first in
    the form).
    """
    fields, errors = {}, {}

    def read(name, reader):
        try:
            fields[name] = reader()
        except FormError as e:
            fields[name] = None
            errors[name] = str(e)

    read("title", read_title)
    read("body", lambda: text_field("body", "Body", BODY_MAX))
    fields["tags"], tags_error = parse_tags(request.form.get("tags", ""))
    if tags_error is not None:
        errors["tags"] = tags_error
    read("image", lambda: read_image(request.files.get("image")))
    read("image_alt", lambda: text_field("image_alt", "Image description", IMAGE_ALT_MAX))
    read("publish_at", read_publish_at)
    return fields, errors


def read_title():
    """Return the submitted title; one of only spaces is as missing as an empty one."""
    title = text_field("title", "Title", TITLE_MAX, "Title is required.")
    if not title.strip():
        raise FormError("Title is required.")
    return title


def render_post_list(template, query, params=(), **context):
    """Render a list page: the requested page of query's posts, each with its tags.

    The page is read once for every reader until the next commit (caching.shared).
    """
    key = ("posts", query, params, page_number(), current_app.config["POSTS_PER_PAGE"])
    page = shared(key, lambda: read_post_page(query, params))
    return render_template(template, page=page, **context)


def read_post_page(query, params):
    """Return the requested page of query's posts, each with its tags."""
    page = paginate(get_db(), query, params)
    page.items = with_tags(page.items)
    return page


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
    post = get_post(id, check_author=False, to_show=True)
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


# The form's buttons (name "action"): a POST without one (the tutorial's tests and
# scripts) publishes at once and goes back to the index, as it always did.
ACTIONS_OF_FORM = ("publish", "draft", "preview")


def read_action():
    """Return the button the writer pressed: 'publish', 'draft', 'preview', or None."""
    action = request.form.get("action")
    if action is not None and action not in ACTIONS_OF_FORM:
        abort(400, "Unknown form action.")
    return action


def read_publish_at():
    """Return the "Publish at" time as stored ('YYYY-MM-DD HH:MM:SS', UTC), or None if empty.

    The writer types it in the site's time zone.
    """
    raw = request.form.get("publish_at", "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise FormError("Publish at must be a date and time, like 2026-12-01T09:00.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=site_timezone())
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def site_timezone():
    """Return the site's time zone (the TIMEZONE setting)."""
    return ZoneInfo(current_app.config["TIMEZONE"])


@bp.app_template_global()
def local_time(moment):
    """Return a stored UTC time as text in the site's time zone, like 2026-12-01 09:00 UTC."""
    local = moment.replace(tzinfo=UTC).astimezone(site_timezone())
    return f"{local:%Y-%m-%d %H:%M} {current_app.config['TIMEZONE']}"


@bp.app_template_global()
def publish_at_value(post):
    """Return the "Publish at" field's value for a post: its time if scheduled, else empty."""
    if post is None or post["draft"] or post["public"]:
        return ""
    return (
        post["created"].replace(tzinfo=UTC).astimezone(site_timezone()).strftime("%Y-%m-%dT%H:%M")
    )


def preview_post(post, title, body, tags, publish_at, pending):
    """Return the post as the form would save it, for the preview: nothing is stored."""
    if publish_at is not None:
        created = datetime.fromisoformat(publish_at)
    elif post is not None and post["public"]:
        created = post["created"]
    else:
        created = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    image = None if post is None or request.form.get("remove_image") else post["image"]
    image_url = url_for("uploads.uploaded", name=image) if image else None
    if pending is not None:
        image, image_url = pending, url_for("uploads.pending", name=pending)
    return {
        # A new post has no id yet; its link in the preview leads nowhere real.
        "id": post["id"] if post else 0,
        "title": title,
        "body": body,
        "created": created,
        "updated": None,
        # No Edit link: the preview shows what readers see.
        "author_id": None,
        "image": image,
        "image_url": image_url,
        "image_alt": request.form.get("image_alt", ""),
        "username": g.user["username"],
        "likes": post["likes"] if post else 0,
        "comments": post["comments"] if post else 0,
        "tags": tags,
    }


def save_post(post=None):
    """Handle the create (post None) or update form's POST; return the response."""
    action = read_action()
    fields, errors = read_post_form()
    template = "blog/update.html" if post else "blog/create.html"
    form = post["id"] if post else 0
    # An image chosen before (then an error or a preview) stays chosen, unless dropped.
    if request.form.get("remove_image"):
        drop_pending()
    if fields["image"] is not None and (errors or action == "preview"):
        keep_pending(fields["image"], form)
    pending = pending_image(form)
    if errors:
        for message in errors.values():
            flash(message)
        return render_template(template, post=post, errors=errors, pending=pending), 400
    title, body, tags, image, publish_at = (
        fields[name] for name in ("title", "body", "tags", "image", "publish_at")
    )
    if action == "preview":
        preview = preview_post(post, title, body, tags, publish_at, pending)
        return render_template(template, post=post, preview=preview, pending=pending)
    if image is None and pending is not None:
        image = read_pending(pending)
    draft = 1 if action == "draft" else 0
    if publish_at is not None and not draft:
        created = publish_at
    elif post is not None and (draft or post["public"]):
        created = None  # kept: a draft's time, or a published post's date
    else:
        created = utc_time()
    with transaction() as db:
        new_image = save_image(db, image)
        if post is None:
            cursor = db.execute(
                "INSERT INTO post (title, body, author_id, image, image_alt, draft, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (title, body, g.user["id"], new_image, fields["image_alt"], draft, created),
            )
            id = inserted_id(cursor)
            old_image = image_name = new_image
        else:
            id = post["id"]
            # Read again under the write lock: an edit committed since the first
            # read may have replaced the image, and deleted it.
            current = get_post(id)
            kept = None if request.form.get("remove_image") else current["image"]
            image_name = new_image or kept
            old_image = current["image"]
            db.execute(
                "UPDATE post SET title = ?, body = ?, image = ?, image_alt = ?, draft = ?,"
                " created = COALESCE(?, created), updated = CURRENT_TIMESTAMP"
                " WHERE id = ?",
                (title, body, image_name, fields["image_alt"], draft, created, id),
            )
        save_tags(db, id, tags)
        if old_image != image_name:
            delete_image(db, old_image)
        saved = get_post(id)
    drop_pending()
    if action is None:
        return redirect(url_for("blog.index"))
    if draft:
        flash("Draft saved.")
    elif saved["public"]:
        flash("Published.")
    else:
        flash(f"Scheduled for {local_time(saved['created'])}.")
    return redirect(post_url(saved))


@bp.route("/create", methods=("GET", "POST"))
@login_required
def create():
    """Write a new post as the current user."""
    if request.method == "POST":
        return save_post()
    return render_template("blog/create.html")


@bp.route("/<int:id>/update", methods=("GET", "POST"))
@login_required
def update(id):
    """Edit one of the current user's posts."""
    (post,) = with_tags([get_post(id)])
    if request.method == "POST":
        return save_post(post)
    return render_template("blog/update.html", post=post)


@bp.route("/drafts")
@login_required
def drafts():
    """List the current user's drafts and scheduled posts."""
    posts = get_db().execute(DRAFTS_QUERY, (g.user["id"],)).fetchall()
    return render_template("blog/drafts.html", posts=posts)


@bp.route("/<int:id>/delete", methods=("POST",))
@login_required
def delete(id):
    """Delete one of the current user's posts (an admin: any post)."""
    with transaction() as db:
        # Read under the write lock, so the image deleted is the one the post has now.
        # An admin may delete anyone's post (to remove spam), never edit it.
        post = get_post(id, check_author=g.user["role"] != "admin")
        db.execute("DELETE FROM post WHERE id = ?", (id,))
        delete_image(db, post["image"])
    if post["author_id"] != g.user["id"]:
        log_action("deleted the post", f"{id} by {post['username']}")
    return redirect(url_for("blog.index"))
