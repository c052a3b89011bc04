"""The site's owner: roles, the Admin page, one-time links, site settings and their commands."""

import functools
import secrets

import click
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.cli import with_appcontext

from .auth import end_other_sessions, find_user, hash_token, login_required
from .caching import shared
from .db import ERRORS, get_db, transaction, utc_time
from .forms import FormError, text_field
from .pagination import Page, page_number
from .uploads import delete_image

bp = Blueprint("admin", __name__, url_prefix="/admin")

ROLES = ("admin", "author")
RESET = "reset"
INVITE = "invite"
# How long each kind of one-time link works, as an SQLite datetime modifier.
LINK_LIFETIMES = {RESET: 24 * 60 * 60, INVITE: 7 * 24 * 60 * 60}
LINK_ENDPOINTS = {RESET: "account.reset_password", INVITE: "auth.register"}
LINK_INVALID = {
    RESET: "This password reset link is not valid: it was used already, has expired, "
    "or was copied wrongly. Ask the site's admin for a new one.",
    INVITE: "This invite link is not valid: it was used already, has expired, "
    "or was copied wrongly. Registration is closed on this blog.",
}
USERS_PER_PAGE = 50
SITE_TITLE_MAX = 100
SITE_DESCRIPTION_MAX = 300
DEFAULT_SITE_TITLE = "Flaskr"
# The settings kept in site_setting.
SETTING_NAMES = ("title", "description", "registration_open")

# Newest accounts first: the ones an admin most often has to look at.
USERS_QUERY = (
    "SELECT u.id, u.username, u.role, u.suspended, u.joined, u.last_login,"
    " (SELECT COUNT(*) FROM post p WHERE p.author_id = u.id) AS posts"
    " FROM user u ORDER BY u.id DESC LIMIT ? OFFSET ?"
)


# --- site settings ----------------------------------------------------------------------


def site_settings():
    """Return the site's settings kept in the database, read once per request.

    A database that cannot be read (a fault, or not yet made by init-db) gives none: the
    configured values stand in, so that error pages still render.
    """
    if "site_settings" not in g:
        try:
            g.site_settings = shared(("site_settings",), read_site_settings)
        except ERRORS:
            g.site_settings = {}
    return g.site_settings


def read_site_settings():
    return {
        row["name"]: row["value"]
        for row in get_db().execute("SELECT name, value FROM site_setting").fetchall()
    }


def site_title():
    """The site's title, as the admin set it (Flaskr until then)."""
    return site_settings().get("title") or DEFAULT_SITE_TITLE


def site_description():
    """The site's one-line description: the admin's, else SITE_DESCRIPTION."""
    return site_settings().get("description") or current_app.config["SITE_DESCRIPTION"]


def registration_open():
    """Whether visitors may register: the admin's choice, else REGISTRATION_OPEN."""
    value = site_settings().get("registration_open")
    if value is None:
        return bool(current_app.config["REGISTRATION_OPEN"])
    return value == "1"


def save_setting(db, name, value):
    """Store one site setting."""
    db.execute(
        "INSERT INTO site_setting (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


# --- one-time links ---------------------------------------------------------------------


def make_link(db, kind, user_id=None, created_by=None):
    """Record a new one-time link of this kind and return its token (kept only hashed)."""
    token = secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO one_time_link (token_hash, kind, user_id, created_by, expires)"
        " VALUES (?, ?, ?, ?, ?)",
        (hash_token(token), kind, user_id, created_by, utc_time(LINK_LIFETIMES[kind])),
    )
    return token


def link_url(kind, token):
    """Return a link's absolute URL; a command without SITE_URL can only give its path."""
    if has_request_context():
        return url_for(LINK_ENDPOINTS[kind], token=token, _external=True)
    site_url = current_app.config["SITE_URL"]
    with current_app.test_request_context(base_url=site_url or None):
        return url_for(LINK_ENDPOINTS[kind], token=token, _external=bool(site_url))


def find_link(db, kind, token):
    """Return the unexpired link of this kind with this token, or None."""
    return db.execute(
        "SELECT l.user_id, u.username FROM one_time_link l LEFT JOIN user u ON u.id = l.user_id"
        " WHERE l.token_hash = ? AND l.kind = ? AND l.expires > CURRENT_TIMESTAMP",
        (hash_token(token), kind),
    ).fetchone()


def link_problem(kind, token):
    """Return why a link cannot be used now, or None."""
    return LINK_INVALID[kind] if find_link(get_db(), kind, token) is None else None


def use_link(db, kind, token):
    """Spend a link inside the caller's write transaction; return its row, or None if unusable."""
    link = find_link(db, kind, token)
    if link is not None:
        db.execute("DELETE FROM one_time_link WHERE token_hash = ?", (hash_token(token),))
    return link


# --- users ------------------------------------------------------------------------------


def delete_user(db, user_id):
    """Delete a user with their posts, comments, likes and sessions, in the caller's transaction.

    Their images (the posts', the avatar) go in the same transaction.
    """
    images = [
        row["image"]
        for row in db.execute(
            "SELECT image FROM post WHERE author_id = ? AND image IS NOT NULL", (user_id,)
        )
    ]
    (avatar,) = db.execute("SELECT avatar FROM user WHERE id = ?", (user_id,)).fetchone()
    for name in [*images, avatar]:
        delete_image(db, name)
    # Posts first: their author reference has no cascade (the tutorial's schema). Their
    # comments, likes and tags go with them; the user's own comments, likes, sessions and
    # links go with the user.
    db.execute("DELETE FROM post WHERE author_id = ?", (user_id,))
    db.execute("DELETE FROM user WHERE id = ?", (user_id,))


def is_admin():
    """Whether the current user is an admin."""
    return g.user is not None and g.user["role"] == "admin"


def admin_required(view):
    """Admins only: visitors are sent to log in, everyone else gets 403."""

    @functools.wraps(view)
    @login_required
    def wrapped_view(**kwargs):
        if not is_admin():
            abort(403, "Only the site's admins can use this page.")
        return view(**kwargs)

    return wrapped_view


def log_action(action, target=""):
    """Log an admin action with who took it."""
    current_app.logger.info(
        "admin %r %s%s from %s",
        g.user["username"],
        action,
        f" {target!r}" if target else "",
        request.remote_addr,
    )


def get_user(id):
    """Return the user with this id, or abort with 404."""
    user = get_db().execute("SELECT * FROM user WHERE id = ?", (id,)).fetchone()
    if user is None:
        abort(404, f"User id {id} doesn't exist.")
    return user


def other_user(id):
    """Return the user an action is for, refusing (400) the admin's own account."""
    user = get_user(id)
    if user["id"] == g.user["id"]:
        abort(400, "Admins cannot do this to their own account.")
    return user


def render_admin(status=200, **context):
    """Render the Admin page: a page of users, the site settings and the invite form."""
    number = page_number()
    rows = (
        get_db()
        .execute(USERS_QUERY, (USERS_PER_PAGE + 1, (number - 1) * USERS_PER_PAGE))
        .fetchall()
    )
    if number > 1 and not rows:
        abort(404, "There is no such page.")
    users = Page(rows[:USERS_PER_PAGE], number, number > 1, len(rows) > USERS_PER_PAGE)
    return render_template("admin/index.html", users=users, **context), status


@bp.route("")
@admin_required
def index():
    """Show the users, the site settings and the invite form."""
    return render_admin()


@bp.route("/users/<int:id>/suspend", methods=("POST",))
@admin_required
def suspend(id):
    """Suspend a user: their sessions end now, they cannot log in; their writing stays."""
    user = other_user(id)
    with transaction() as db:
        db.execute(
            "UPDATE user SET suspended = CURRENT_TIMESTAMP WHERE id = ? AND suspended IS NULL",
            (id,),
        )
        end_other_sessions(db, id)
    log_action("suspended", user["username"])
    flash(f"{user['username']} is suspended and logged out everywhere.")
    return redirect(url_for("admin.index"))


@bp.route("/users/<int:id>/reinstate", methods=("POST",))
@admin_required
def reinstate(id):
    """Let a suspended user log in again."""
    user = other_user(id)
    with transaction() as db:
        db.execute("UPDATE user SET suspended = NULL WHERE id = ?", (id,))
    log_action("reinstated", user["username"])
    flash(f"{user['username']} can log in again.")
    return redirect(url_for("admin.index"))


@bp.route("/users/<int:id>/delete", methods=("POST",))
@admin_required
def delete(id):
    """Delete a user and everything they wrote."""
    user = other_user(id)
    with transaction() as db:
        delete_user(db, id)
    log_action("deleted", user["username"])
    flash(f"{user['username']} is deleted, with their posts, comments and likes.")
    return redirect(url_for("admin.index"))


@bp.route("/users/<int:id>/reset-link", methods=("POST",))
@admin_required
def reset_link(id):
    """Make a one-time password reset link for a user and show it once."""
    user = get_user(id)
    with transaction() as db:
        token = make_link(db, RESET, user["id"], g.user["id"])
    log_action("made a password reset link for", user["username"])
    return render_admin(
        new_link=(f"Password reset link for {user['username']}", link_url(RESET, token))
    )


@bp.route("/invites", methods=("POST",))
@admin_required
def invite():
    """Make a one-time invite link that lets one person register."""
    with transaction() as db:
        token = make_link(db, INVITE, created_by=g.user["id"])
    log_action("made an invite link")
    return render_admin(new_link=("Invite link", link_url(INVITE, token)))


@bp.route("/settings", methods=("POST",))
@admin_required
def settings():
    """Save the site's title, description and whether registration is open."""
    try:
        title = text_field("title", "Site title", SITE_TITLE_MAX, "Site title is required.")
        description = text_field("description", "Description", SITE_DESCRIPTION_MAX)
    except FormError as e:
        return render_admin(400, settings_error=str(e))
    if not title.strip() or "\n" in title or "\n" in description:
        return render_admin(400, settings_error="Title and description must be one line each.")
    with transaction() as db:
        save_setting(db, "title", title.strip())
        save_setting(db, "description", description.strip())
        save_setting(db, "registration_open", "1" if request.form.get("registration_open") else "0")
    log_action("changed the site settings")
    flash("Site settings saved.")
    return redirect(url_for("admin.index"))


# --- commands ---------------------------------------------------------------------------


def command_user(name):
    """Return the user with this name for a command, or stop with an error."""
    user = find_user(name)
    if user is None:
        raise click.ClickException(f"There is no user {name}.")
    return user


@click.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@with_appcontext
def set_role_command(name, role):
    """Make user NAME an admin, or an author again."""
    user = command_user(name)
    with transaction() as db:
        db.execute("UPDATE user SET role = ? WHERE id = ?", (role, user["id"]))
    current_app.logger.info("set-role: %r is now %s", user["username"], role)
    click.echo(f"{user['username']} is now {'an admin' if role == 'admin' else 'an author'}.")


@click.command("reset-password")
@click.argument("name")
@with_appcontext
def reset_password_command(name):
    """Print a one-time link (24 hours) that sets a new password for user NAME."""
    user = command_user(name)
    with transaction() as db:
        token = make_link(db, RESET, user["id"])
    current_app.logger.info("reset-password: link made for %r", user["username"])
    click.echo(f"Password reset link for {user['username']} (works once, within 24 hours):")
    click.echo(link_url(RESET, token))


def init_app(app):
    """Offer the site's settings to templates and register the owner's commands."""
    app.context_processor(
        lambda: {
            "site_title": site_title,
            "site_description": site_description,
            "registration_open": registration_open,
            "is_admin": is_admin,
        }
    )
    app.cli.add_command(set_role_command)
    app.cli.add_command(reset_password_command)
