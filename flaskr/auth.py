"""Accounts: registration, login, logout, the logged-in user and password hashing."""

import functools
import re

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.security import check_password_hash, generate_password_hash

from .db import get_db, transaction

bp = Blueprint("auth", __name__, url_prefix="/auth")

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,32}")
PASSWORD_MAX_LENGTH = 1024

# One hash per hashing method, checked against when the username is unknown, so that a
# wrong username costs as much time as a wrong password.
_dummy_hashes = {}


def login_required(view):
    """Send visitors to the login page, remembering (in the session) where they were going."""

    @functools.wraps(view)
    def wrapped_view(**kwargs):
        if g.user is None:
            if request.method == "GET":
                session["next"] = request.full_path.rstrip("?")
            return redirect(url_for("auth.login"))
        return view(**kwargs)

    return wrapped_view


@bp.before_app_request
def load_logged_in_user():
    """Put the user whose id is in the session on g.user (None for visitors)."""
    user_id = session.get("user_id")
    g.user = None
    if user_id is not None:
        g.user = (
            get_db().execute("SELECT id, username FROM user WHERE id = ?", (user_id,)).fetchone()
        )


def hash_password(password):
    """Hash a password with the configured method (scrypt by default)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def needs_rehash(stored_hash):
    """Whether a stored hash is older or weaker than the configured method."""
    method = stored_hash.split("$", 1)[0]
    wanted = current_app.config["PASSWORD_HASH_METHOD"]
    have_name, *have_params = method.split(":")
    want_name, *want_params = wanted.split(":")
    if have_name != want_name or len(have_params) != len(want_params):
        return True
    return any(int(have) < int(want) for have, want in zip(have_params, want_params, strict=True))


def check_unknown_user(password):
    """Spend one hash check on a password for a username that does not exist."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash("not a password", method=method)
    check_password_hash(_dummy_hashes[method], password)


def is_local_path(target):
    """Whether a redirect target stays on this site: a path, never //host or a scheme."""
    return (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and target.isprintable()
    )


def password_problem(username, password):
    """Return why a new password is refused, or None."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        return f"Password must be at least {minimum} characters."
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"Password must be at most {PASSWORD_MAX_LENGTH} characters."
    if password.casefold() == username.casefold():
        return "Password must not be the same as the username."
    return None


def find_user(username):
    """Return the user with this name, ignoring case, or None."""
    return (
        get_db()
        .execute("SELECT * FROM user WHERE username = ? COLLATE NOCASE", (username,))
        .fetchone()
    )


@bp.route("/register", methods=("GET", "POST"))
def register():
    """Register a new user; on success send them to the login page."""
    if not current_app.config["REGISTRATION_OPEN"]:
        abort(403, "Registration is closed on this blog.")
    if request.method == "POST":
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        error = None
        if not username:
            error = "Username is required."
        elif not password:
            error = "Password is required."
        elif find_user(username) is not None:
            error = f"User {username} is already registered."
        elif not USERNAME_PATTERN.fullmatch(username):
            error = "Username must be 1 to 32 letters, digits, '_', '-' or '.'."
        else:
            error = password_problem(username, password)

        if error is None:
            hashed = hash_password(password)
            db = get_db()
            try:
                with transaction(db):
                    db.execute(
                        "INSERT INTO user (username, password) VALUES (?, ?)", (username, hashed)
                    )
            except db.IntegrityError:
                # Someone took the name between the check and the insert.
                error = f"User {username} is already registered."
            else:
                return redirect(url_for("auth.login"))

        flash(error)
        return render_template("auth/register.html"), 400

    return render_template("auth/register.html")


@bp.route("/login", methods=("GET", "POST"))
def login():
    """Log a user in and send them where they were going, or to the index."""
    if request.method == "POST":
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        user = find_user(username)

        error = None
        if user is None:
            check_unknown_user(password)
            error = "Incorrect username."
        elif not check_password_hash(user["password"], password):
            error = "Incorrect password."

        if error is None:
            if needs_rehash(user["password"]):
                with transaction() as db:
                    db.execute(
                        "UPDATE user SET password = ? WHERE id = ?",
                        (hash_password(password), user["id"]),
                    )
            target = session.get("next")
            session.clear()
            session["user_id"] = user["id"]
            return redirect(target if is_local_path(target) else url_for("index"))

        flash(error)
        return render_template("auth/login.html"), 400

    return render_template("auth/login.html")


@bp.route("/logout", methods=("GET", "POST"))
def logout():
    """Log the current user out."""
    session.clear()
    return redirect(url_for("index"))
