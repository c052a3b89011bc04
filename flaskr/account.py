"""Each user's own account: the settings page, password changes, sessions and reset links."""

import io
import json
import tempfile
import zipfile

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from PIL import Image, ImageOps

from .admin import LINK_INVALID, RESET, delete_user, find_link, use_link
from .auth import (
    check_password,
    end_other_sessions,
    hash_password,
    login_required,
    password_problem,
    session_cutoff,
)
from .db import get_db, transaction
from .forms import BIO_MAX, DISPLAY_NAME_MAX, PASSWORD_MAX, FormError, text_field
from .portability import POST_STATE, markdown_file, slug, timestamp
from .tags import with_tags
from .uploads import delete_image, image_data, image_slots, read_image, save_image

# An avatar's width and height in pixels: shown at 96 at most, sharp on dense screens.
AVATAR_SIZE = 192

bp = Blueprint("account", __name__)

# Browsers and systems as their User-Agent names them, the first match winning: the
# browsers built on another one name it too (Edge says Chrome, Chrome says Safari).
BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
)
SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)

# The password fields of the forms, whose errors are shown beside them.
CURRENT_FIELD = "current_password"
REPEAT_FIELD = "repeat_password"

SESSIONS_QUERY = (
    "SELECT id, user_agent, address, created, last_seen FROM user_session"
    " WHERE user_id = ? AND created > ? ORDER BY last_seen DESC, id DESC"
)


def describe_agent(user_agent):
    """Return 'Browser on System' for a User-Agent ('Unknown browser' when unrecognised)."""
    browser = next((name for mark, name in BROWSERS if mark in user_agent), "Unknown browser")
    system = next((name for mark, name in SYSTEMS if mark in user_agent), None)
    return f"{browser} on {system}" if system else browser


def user_sessions():
    """Return the current user's unexpired sessions, most recently seen first."""
    return get_db().execute(SESSIONS_QUERY, (g.user["id"], session_cutoff())).fetchall()


def render_settings(status=200, **context):
    """Render the settings page with the user's profile and sessions."""
    user = get_db().execute("SELECT * FROM user WHERE id = ?", (g.user["id"],)).fetchone()
    return (
        render_template(
            "account/settings.html",
            user=user,
            sessions=user_sessions(),
            describe_agent=describe_agent,
            errors=context.pop("errors", {}),
            **context,
        ),
        status,
    )


def read_new_password(username):
    """Return (new password, {field: error}) from the new and repeated password fields."""
    errors = {}
    try:
        new = text_field("new_password", "New password", PASSWORD_MAX, "New password is required.")
    except FormError as e:
        return None, {"new_password": str(e)}
    problem = password_problem(username, new)
    if problem is not None:
        errors["new_password"] = problem
    elif request.form.get("repeat_password", "") != new:
        errors[REPEAT_FIELD] = "The two new passwords differ."
    return new, errors


@bp.route("/settings")
@login_required
def settings():
    """Show the user's settings: password and sessions."""
    return render_settings()


def read_avatar(file):
    """Return an uploaded avatar as (JPEG bytes, "jpg"), cropped square and small, or None.

    The upload goes through the posts' pipeline first (recognised by decoding, limited in
    bytes, pixels and frames, re-encoded); its first frame is then cropped and scaled.
    """
    image = read_image(file)
    if image is None:
        return None
    with image_slots.held(), Image.open(io.BytesIO(image[0])) as decoded:
        # Transparent parts become white, not black, once the alpha channel is dropped.
        canvas = Image.new("RGBA", decoded.size, "white")
        canvas.alpha_composite(decoded.convert("RGBA"))
        square = ImageOps.fit(canvas.convert("RGB"), (AVATAR_SIZE, AVATAR_SIZE))
        out = io.BytesIO()
        square.save(out, format="JPEG", quality=85)
    return out.getvalue(), "jpg"


@bp.route("/settings/profile", methods=("POST",))
@login_required
def profile():
    """Save the display name, bio and avatar shown on the author's pages."""
    try:
        display_name = text_field("display_name", "Display name", DISPLAY_NAME_MAX).strip()
        bio = text_field("bio", "Bio", BIO_MAX).strip()
        avatar = read_avatar(request.files.get("avatar"))
    except FormError as e:
        return render_settings(400, errors={"profile": str(e)})
    if "\n" in display_name or "\r" in display_name:
        return render_settings(400, errors={"profile": "Display name must be one line."})
    with transaction() as db:
        new_avatar = save_image(db, avatar)
        (old,) = db.execute("SELECT avatar FROM user WHERE id = ?", (g.user["id"],)).fetchone()
        kept = None if request.form.get("remove_avatar") else old
        db.execute(
            "UPDATE user SET display_name = ?, bio = ?, avatar = ? WHERE id = ?",
            (display_name, bio, new_avatar or kept, g.user["id"]),
        )
        if old != (new_avatar or kept):
            delete_image(db, old)
    flash("Profile saved.")
    return redirect(url_for("account.settings"))


@bp.route("/settings/password", methods=("POST",))
@login_required
def change_password():
    """Change the password; every other session of the user ends, this one continues."""
    user = get_db().execute("SELECT * FROM user WHERE id = ?", (g.user["id"],)).fetchone()
    try:
        current = text_field("current_password", "Current password", PASSWORD_MAX)
    except FormError as e:
        return render_settings(400, errors={"current_password": str(e)})
    new, errors = read_new_password(user["username"])
    if not errors and not check_password(user, current)[0]:
        errors[CURRENT_FIELD] = "Incorrect password."
    if errors:
        return render_settings(400, errors=errors)
    hashed = hash_password(new)
    with transaction() as db:
        db.execute("UPDATE user SET password = ? WHERE id = ?", (hashed, user["id"]))
        end_other_sessions(db, user["id"])
    current_app.logger.info("password changed by %r from %s", user["username"], request.remote_addr)
    flash("Password changed. Every other session of yours has been logged out.")
    return redirect(url_for("account.settings"))


@bp.route("/settings/sessions/<int:id>/logout", methods=("POST",))
@login_required
def end_one_session(id):
    """Log out one of the user's sessions (this one included)."""
    with transaction() as db:
        ended = db.execute(
            "DELETE FROM user_session WHERE id = ? AND user_id = ?", (id, g.user["id"])
        ).rowcount
    if not ended:
        abort(404, "There is no such session of yours.")
    if id == g.user["session_id"]:
        session.clear()
        return redirect(url_for("index"))
    flash("That session is logged out.")
    return redirect(url_for("account.settings"))


@bp.route("/settings/sessions/logout-others", methods=("POST",))
@login_required
def end_other_user_sessions():
    """Log out every session of the user but this one."""
    with transaction() as db:
        end_other_sessions(db, g.user["id"])
    flash("Every other session of yours is logged out.")
    return redirect(url_for("account.settings"))


@bp.route("/account/reset/<token>", methods=("GET", "POST"))
def reset_password(token):
    """Set a new password with a one-time link from an admin; every session of the user ends."""
    link = find_link(get_db(), RESET, token)
    if link is None:
        abort(404, LINK_INVALID[RESET])
    if request.method == "GET":
        return render_template("account/reset.html", errors={}, username=link["username"])
    new, errors = read_new_password(link["username"])
    if errors:
        return render_template("account/reset.html", errors=errors, username=link["username"]), 400
    hashed = hash_password(new)
    with transaction() as db:
        # Spent under the write lock: two uses of one link at once cannot both succeed.
        if use_link(db, RESET, token) is None:
            abort(404, LINK_INVALID[RESET])
        db.execute("UPDATE user SET password = ? WHERE id = ?", (hashed, link["user_id"]))
        end_other_sessions(db, link["user_id"])
    current_app.logger.info("password reset by link for %r", link["username"])
    flash("Your password is set. Log in with it.")
    return redirect(url_for("auth.login"))


def write_export(archive, user):
    """Write a user's posts (Markdown with front matter), their images and comments into a zip."""
    db = get_db()
    posts = with_tags(
        db.execute(
            f"SELECT id, title, body, {POST_STATE} AS state, created, updated, image"
            " FROM post WHERE author_id = ? ORDER BY id",
            (user["id"],),
        )
    )
    for post in posts:
        post["created"], post["updated"] = timestamp(post["created"]), timestamp(post["updated"])
        if post["image"]:
            # Named after the post, as the site export names them.
            stored = post["image"]
            post["image"] = f"images/{post['id']}.{stored.rsplit('.', 1)[1]}"
            data = image_data(stored)
            if data is None:
                post["image"] = None
            else:
                archive.writestr(post["image"], data)
        text = markdown_file(post, user["username"], post["tags"])
        archive.writestr(f"posts/{post['id']}-{slug(post['title'])}.md", text)
    comments = [
        {**dict(row), "created": timestamp(row["created"])}
        for row in db.execute(
            "SELECT c.id, c.post_id, p.title AS post_title, c.created, c.body"
            " FROM comment c JOIN post p ON p.id = c.post_id WHERE c.author_id = ? ORDER BY c.id",
            (user["id"],),
        )
    ]
    archive.writestr("comments.json", json.dumps(comments, ensure_ascii=False, indent=1) + "\n")
    profile = {
        "username": user["username"],
        "display_name": user["display_name"],
        "bio": user["bio"],
        "joined": timestamp(user["joined"]),
    }
    archive.writestr("profile.json", json.dumps(profile, ensure_ascii=False, indent=1) + "\n")


@bp.route("/settings/export")
@login_required
def export():
    """Download everything the user wrote as one zip file."""
    user = get_db().execute("SELECT * FROM user WHERE id = ?", (g.user["id"],)).fetchone()
    # On disk, not in memory: a user's images can add up to far more than a request may hold.
    spool = tempfile.TemporaryFile()
    db = get_db()
    db.execute("BEGIN")
    try:
        with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
            write_export(archive, user)
    finally:
        db.execute("COMMIT")
    spool.seek(0)
    current_app.logger.info("export by %r", user["username"])
    return send_file(
        spool,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"{user['username']}-flaskr-export.zip",
    )


@bp.route("/settings/delete", methods=("POST",))
@login_required
def delete_account():
    """Delete the account with everything in it, after the password and a confirmation."""
    user = get_db().execute("SELECT * FROM user WHERE id = ?", (g.user["id"],)).fetchone()
    try:
        password = text_field("delete_password", "Password", PASSWORD_MAX)
    except FormError as e:
        return render_settings(400, errors={"delete_password": str(e)})
    if not request.form.get("confirm"):
        return render_settings(400, errors={"confirm": "Tick the box to confirm."})
    if not check_password(user, password)[0]:
        return render_settings(400, errors={"delete_password": "Incorrect password."})
    with transaction() as db:
        delete_user(db, user["id"])
    session.clear()
    current_app.logger.info("account deleted by %r from %s", user["username"], request.remote_addr)
    flash("Your account is deleted, with everything you wrote.")
    return redirect(url_for("index"))
