"""Accounts: registration, login, logout, the logged-in user, sessions and password hashing."""

import functools
import hashlib
import re
import secrets
import time
from importlib import resources

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
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.security import check_password_hash, generate_password_hash

from . import security
from .caching import shared
from .db import ERRORS, fault_cause, get_db, transaction, utc_time
from .forms import PASSWORD_MAX, USERNAME_MAX, FormError, text_field
from .limits import Slots

bp = Blueprint("auth", __name__, url_prefix="/auth")

USERNAME_PATTERN = re.compile(rf"[A-Za-z0-9_.-]{{1,{USERNAME_MAX}}}")
# Names registered before the 32-character rule (in a tutorial database) still log in.
LOGIN_USERNAME_MAX = 1024

# One hash per hashing method, checked against when the username is unknown, so that a
# wrong username costs as much time as a wrong password.
_dummy_hashes = {}

# Each scrypt hash at the default cost takes 128 MB and a core for a good part of a
# second: a few at once, whatever asks for them (login, registration, a rehash, a
# password change), so that a flood of them queues briefly and then gets 503.
password_slots = Slots(2, "checking passwords")

COMMON_PASSWORDS_MESSAGE = "This password is one of the most common ones; choose another."
SUSPENDED_MESSAGE = "This account is suspended; ask the site's admin why."
# How stale a session's "last seen" time may get before a request refreshes it.
LAST_SEEN_EVERY = 60
# What a session record keeps of the browser's User-Agent, in characters.
USER_AGENT_MAX = 500


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
    """Put the session's user on g.user (None for visitors and for ended sessions).

    The session must carry a token whose record still exists: logging out deletes
    it, so a copy of the cookie taken before is worth nothing afterwards.
    """
    user_id = session.get("user_id")
    token = session.get("token")
    g.user = None
    if user_id is not None and isinstance(token, str):
        token_hash = hash_token(token)

        def read_session():
            return (
                get_db()
                .execute(
                    "SELECT u.id, u.username, u.role, u.display_name, s.id AS session_id,"
                    " CASE WHEN s.last_seen >= ? THEN 0 ELSE 1 END AS stale"
                    " FROM user_session s JOIN user u ON u.id = s.user_id"
                    " WHERE s.token_hash = ? AND s.user_id = ? AND s.created > ?"
                    " AND u.suspended IS NULL",
                    (utc_time(-LAST_SEEN_EVERY), token_hash, user_id, session_cutoff()),
                )
                .fetchone()
            )

        # The answer holds until the next commit (a logout, a suspension) and within the
        # second it was read in, as the database's own clock reads times.
        g.user = shared(("session", token_hash, user_id, int(time.time())), read_session)
        if g.user is not None and g.user["stale"]:
            # At most once a minute per session: a write on every request would cost more.
            get_db().execute(
                "UPDATE user_session SET last_seen = CURRENT_TIMESTAMP WHERE id = ?",
                (g.user["session_id"],),
            )


def hash_token(token):
    """Return what the database keeps of a session token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_cutoff():
    """Return the time before which a login has ended (its lifetime ago)."""
    return utc_time(-current_app.permanent_session_lifetime.total_seconds())


def start_session(user_id):
    """Begin a fresh session for the user, recorded server-side."""
    token = secrets.token_urlsafe(32)
    with transaction() as db:
        db.execute(
            "DELETE FROM user_session WHERE user_id = ? AND created <= ?",
            (user_id, session_cutoff()),
        )
        db.execute(
            "INSERT INTO user_session (token_hash, user_id, user_agent, address, last_seen)"
            " VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)",
            (
                hash_token(token),
                user_id,
                request.headers.get("User-Agent", "")[:USER_AGENT_MAX],
                request.remote_addr or "",
            ),
        )
        db.execute("UPDATE user SET last_login = CURRENT_TIMESTAMP WHERE id = ?", (user_id,))
    session.clear()
    session["user_id"] = user_id
    session["token"] = token


def end_other_sessions(db, user_id):
    """Delete every session of the user but this request's own (all of them for another user)."""
    token = session.get("token") if session.get("user_id") == user_id else None
    db.execute(
        # A token hash is never empty: without a token, every session goes.
        "DELETE FROM user_session WHERE user_id = ? AND token_hash <> COALESCE(?, '')",
        (user_id, hash_token(token) if isinstance(token, str) else None),
    )


def end_session():
    """Delete the session's record, then forget the session.

    Returns None, or the database error that kept the record (read-only, full or locked
    database): the cookie is cleared all the same, so this browser is logged out, and the
    record ends with the session's lifetime.
    """
    token = session.get("token")
    problem = None
    if isinstance(token, str):
        try:
            with transaction() as db:
                db.execute("DELETE FROM user_session WHERE token_hash = ?", (hash_token(token),))
        except ERRORS as e:
            if fault_cause(e) is None:
                raise
            problem = e
    session.clear()
    return problem


def hash_password(password):
    """Hash a password with the configured method (scrypt by default), in a password slot."""
    with password_slots.held():
        return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def check_password(user, password):
    """Check a login's password, in a password slot; return (correct, new hash or None).

    An unknown user (None) costs one hash check all the same. A correct password whose
    stored hash is older or weaker comes back re-hashed, in the same slot.
    """
    method = current_app.config["PASSWORD_HASH_METHOD"]
    with password_slots.held():
        if user is None:
            if method not in _dummy_hashes:
                _dummy_hashes[method] = generate_password_hash("not a password", method=method)
            check_password_hash(_dummy_hashes[method], password)
            return False, None
        if not check_password_hash(user["password"], password):
            return False, None
        if needs_rehash(user["password"]):
            return True, generate_password_hash(password, method=method)
        return True, None


def needs_rehash(stored_hash):
    """Whether a stored hash is older or weaker than the configured method."""
    method = stored_hash.split("$", 1)[0]
    wanted = current_app.config["PASSWORD_HASH_METHOD"]
    have_name, *have_params = method.split(":")
    want_name, *want_params = wanted.split(":")
    if have_name != want_name or len(have_params) != len(want_params):
        return True
    return any(int(have) < int(want) for have, want in zip(have_params, want_params, strict=True))


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
    if len(password) > PASSWORD_MAX:
        return f"Password must be at most {PASSWORD_MAX} characters."
    if password.casefold() == username.casefold():
        return "Password must not be the same as the username."
    if password.casefold() in common_passwords():
        return COMMON_PASSWORDS_MESSAGE
    return None


@functools.cache
def common_passwords():
    """Return the 10,000 most common passwords, in lower case, read once from the package."""
    listing = resources.files("flaskr").joinpath("data", "common-passwords.txt")
    return frozenset(listing.read_text(encoding="utf-8").splitlines())


def find_user(username):
    """Return the user with this name, ignoring case, or None."""
    return (
        get_db()
        .execute("SELECT * FROM user WHERE lower(username) = lower(?)", (username,))
        .fetchone()
    )


@bp.route("/register", methods=("GET", "POST"))
@bp.route("/register/invite/<token>", methods=("GET", "POST"))
def register(token=None):
    """Register a new user; on success send them to the login page.

    While registration is closed, an invite link (one-time, from an admin) lets one person in.
    """
    from .admin import INVITE, link_problem, registration_open, use_link

    invited = token is not None and not registration_open()
    if not registration_open():
        if token is None:
            abort(403, "Registration is closed on this blog.")
        problem = link_problem(INVITE, token)
        if problem is not None:
            abort(403, problem)
    if request.method == "POST":
        try:
            # Lengths are checked below, after the tutorial's checks.
            username = text_field("username", "Username", None, "Username is required.")
            password = text_field("password", "Password", None, "Password is required.")
        except FormError as e:
            flash(str(e))
            return render_template("auth/register.html"), 400
        error = None
        if find_user(username) is not None:
            error = f"User {username} is already registered."
        elif not USERNAME_PATTERN.fullmatch(username):
            error = "Username must be 1 to 32 letters, digits, '_', '-' or '.'."
        else:
            error = password_problem(username, password)

        if error is None:
            attempt = security.start_registration(request.remote_addr or "")
            try:
                hashed = hash_password(password)
            except ServiceUnavailable:
                # Refused before any work: it does not count against the address.
                security.forget_attempt(attempt)
                raise
            db = get_db()
            try:
                with transaction(db):
                    # The invite is spent in the same transaction: two people racing
                    # with one link cannot both register.
                    if invited and use_link(db, INVITE, token) is None:
                        abort(403, "This invite link has been used already.")
                    db.execute(
                        "INSERT INTO user (username, password) VALUES (?, ?)", (username, hashed)
                    )
            except db.IntegrityError:
                # Someone took the name between the check and the insert.
                error = f"User {username} is already registered."
            else:
                flash("Account created. Log in with your new username and password.")
                # For the login form, not the address: the redirect is exactly /auth/login.
                session["registered"] = username
                return redirect(url_for("auth.login"))

        flash(error)
        return render_template("auth/register.html"), 400

    return render_template("auth/register.html")


@bp.route("/login", methods=("GET", "POST"))
def login():
    """Log a user in and send them where they were going, or to the index."""
    if request.method == "POST":
        try:
            username = text_field("username", "Username", LOGIN_USERNAME_MAX)
            password = text_field("password", "Password", PASSWORD_MAX)
        except FormError as e:
            flash(str(e))
            return render_template("auth/login.html"), 400
        address = request.remote_addr or ""
        user = find_user(username)
        device = security.known_device(user)
        # Counted as a failure before the slow hash check, so that parallel guesses
        # cannot all slip past the limit; a success takes it back.
        attempt = security.start_login_attempt(username, address, device)
        try:
            correct, new_hash = check_password(user, password)
        except ServiceUnavailable:
            # Refused unchecked: a busy server must not count against anyone.
            security.forget_attempt(attempt)
            raise

        if correct and user["suspended"] is not None:
            security.login_succeeded(username, device)
            current_app.logger.info("login refused for suspended %r from %s", username, address)
            flash(SUSPENDED_MESSAGE)
            return render_template("auth/login.html"), 403

        if correct:
            security.login_succeeded(username, device)
            if new_hash is not None:
                with transaction() as db:
                    db.execute("UPDATE user SET password = ? WHERE id = ?", (new_hash, user["id"]))
            target = session.get("next")
            start_session(user["id"])
            current_app.logger.info("login by %r from %s", user["username"], address)
            response = redirect(target if is_local_path(target) else url_for("index"))
            return security.give_device_cookie(response, user["id"], device)

        error = "Incorrect username." if user is None else "Incorrect password."
        current_app.logger.info(
            "login failed for %r from %s: %s", username, address, error.lower().rstrip(".")
        )
        flash(error)
        return render_template("auth/login.html"), 400

    return render_template("auth/login.html", username=session.pop("registered", ""))


@bp.route("/logout", methods=("GET", "POST"))
def logout():
    """Log the current user out; a GET from anywhere but this site asks first."""
    user = g.user
    if request.method == "GET" and user is not None and not security.is_own_navigation():
        # A link or image on another site must not log people out: offer the button.
        return render_template("auth/logout.html")
    who = f"logout by {user['username']!r}" if user is not None else "logout"
    problem = end_session()
    if problem is not None:
        current_app.logger.warning(
            "%s from %s could not delete the session record: %s",
            who,
            request.remote_addr,
            problem,
        )
        flash("You are logged out on this device.")
    elif user is not None:
        current_app.logger.info("%s from %s", who, request.remote_addr)
    return redirect(url_for("index"))
