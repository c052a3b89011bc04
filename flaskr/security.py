"""Web safety: cross-site refusal, headers, id bounds, throttling of logins and registrations."""

import secrets
from datetime import UTC, datetime, timedelta

from flask import abort, current_app, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.exceptions import TooManyRequests
from werkzeug.routing import IntegerConverter

from .db import inserted_id, transaction, utc_time
from .forms import FormRequest
from .settings import signing_key

# SQLite's largest integer; a larger id in a URL can name nothing.
MAX_ID = 2**63 - 1

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sec-Fetch-Site values of requests made by this site's own pages, or typed by the user.
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})
CROSS_SITE_MESSAGE = (
    "This form was sent from another site, so it was refused. If you sent it, go back to this "
    "site, reload the page and try again."
)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


class BoundedIntegerConverter(IntegerConverter):
    """`<int:...>` in URLs, limited to what SQLite can store: a larger number is 404."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def is_cross_site():
    """Whether the browser says this request was made by another site's page.

    Browsers send Sec-Fetch-Site; older ones only Origin. A request with neither
    comes from a non-browser client, which holds no one else's cookies.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site.lower() not in TRUSTED_FETCH_SITES
    origin = request.headers.get("Origin")
    if origin is not None:
        # The request's own origin as the client sees it (ProxyFix applied).
        own_origin = f"{request.scheme}://{request.host}"
        return origin.lower() != own_origin.lower()
    return False


def refuse_cross_site_requests():
    """Refuse (403) a state-changing request sent by another site's page."""
    if request.method in UNSAFE_METHODS and is_cross_site():
        abort(403, CROSS_SITE_MESSAGE)


def set_security_headers(response):
    """Add the security headers, keeping any a view set itself (e.g. a stricter CSP)."""
    # One pass over the response's headers rather than one per security header.
    present = {name.lower() for name in response.headers.keys()}
    for name, value in SECURITY_HEADERS.items():
        if name.lower() not in present:
            response.headers.add(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    return response


def is_own_navigation():
    """Whether a GET may change state: this site's own page sent it, or a non-browser client.

    Sec-Fetch-Site must say same-origin; a request with neither Sec-Fetch-Site nor Origin
    comes from a client that holds no one else's cookies (curl, the test client). Anything
    else, including a typed URL (none) or a link on another site, is not enough.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site.lower() == "same-origin"
    return "Origin" not in request.headers


def wait_for(db, table, column, value, limit, window):
    """Seconds until fewer than `limit` rows of `table` with `column` = value are in the window.

    0 when there are fewer already. That is when the limit-th newest row leaves the
    window; one indexed lookup.
    """
    row = db.execute(
        f"SELECT at FROM {table} WHERE {column} = ? AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?",
        (value, utc_time(-window), limit - 1),
    ).fetchone()
    if row is None:
        return 0
    leaves = row[0].replace(tzinfo=UTC) + timedelta(seconds=window)
    return max(1, int((leaves - datetime.now(UTC)).total_seconds()))


def record_within_limits(table, window, limits, row):
    """Record an attempt in `table` unless a limit is reached; return (seconds to wait, row id).

    `limits` are (column, value, limit) triples counted within the window (seconds); `row`
    maps columns to the values recorded. Counting and recording happen in one write
    transaction, so parallel attempts cannot all slip past a limit together; a refused
    attempt records nothing, so retrying while refused does not push the wait further.
    """
    with transaction() as db:
        db.execute(f"DELETE FROM {table} WHERE at <= ?", (utc_time(-window),))
        wait = max(wait_for(db, table, *limit, window) for limit in limits)
        if wait:
            return wait, None
        placeholders = ", ".join("?" * len(row))
        cursor = db.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({placeholders}) RETURNING id",
            tuple(row.values()),
        )
        return 0, inserted_id(cursor)


def try_again_in(seconds):
    """Tell a throttled person when to try again, in whole minutes."""
    minutes = -(-seconds // 60)
    unit = "minute" if minutes == 1 else "minutes"
    return f"Try again in {minutes} {unit}."


def start_login_attempt(username, address, device=None):
    """Count a login attempt as a failure until login_succeeded says otherwise.

    Without a known device the attempt counts against the username and the address; with
    one (the device id of a valid device cookie for this username) only against that
    device. Aborts with 429 (and Retry-After) when the counted limit is reached. Returns
    the attempt, for forget_attempt when it was never checked.
    """
    config = current_app.config
    if device is None:
        table, where = "login_failure", ""
        # Usernames are one person whatever their case: failures are kept in lower case.
        limits = (
            ("username", username.lower(), config["LOGIN_FAILURES_PER_USERNAME"]),
            ("address", address, config["LOGIN_FAILURES_PER_ADDRESS"]),
        )
        row = {"username": username.lower(), "address": address}
    else:
        table, where = "device_login_failure", " on a known device"
        limits = (("device", device, config["LOGIN_FAILURES_PER_DEVICE"]),)
        row = {"device": device}
    wait, row_id = record_within_limits(table, config["LOGIN_WINDOW_SECONDS"], limits, row)
    if wait:
        current_app.logger.info(
            "login throttled for %r from %s%s: retry after %ss", username, address, where, wait
        )
        raise TooManyRequests(f"Too many failed logins. {try_again_in(wait)}", retry_after=wait)
    return table, row_id


def login_succeeded(username, device=None):
    """Forget the failures its owner has just made up for.

    Without a known device, the username's failures; with one, only that device's, so
    that the owner logging in does not give strangers guessing their name a fresh start.
    """
    with transaction() as db:
        if device is None:
            db.execute("DELETE FROM login_failure WHERE username = ?", (username.lower(),))
        else:
            db.execute("DELETE FROM device_login_failure WHERE device = ?", (device,))


def start_registration(address):
    """Count a registration from this address; 429 (and Retry-After) past the limit.

    Returns the attempt, for forget_attempt when no account was attempted after all.
    """
    config = current_app.config
    wait, row_id = record_within_limits(
        "registration_attempt",
        config["REGISTRATION_WINDOW_SECONDS"],
        (("address", address, config["REGISTRATIONS_PER_ADDRESS"]),),
        {"address": address},
    )
    if wait:
        current_app.logger.info("registration throttled from %s: retry after %ss", address, wait)
        raise TooManyRequests(
            f"Too many registrations from your address. {try_again_in(wait)}", retry_after=wait
        )
    return "registration_attempt", row_id


def forget_attempt(attempt):
    """Take back a counted attempt that the server refused before checking it (503)."""
    table, row_id = attempt
    with transaction() as db:
        db.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))


# Device cookies --------------------------------------------------------------------------

DEVICE_COOKIE = "device"
# Keeps device cookies apart from anything else signed with the secret key (sessions).
DEVICE_COOKIE_SALT = "flaskr device cookie"


def device_serializer():
    """Sign and check device cookies with the app's secret key."""
    return URLSafeTimedSerializer(signing_key(current_app), salt=DEVICE_COOKIE_SALT)


def known_device(user):
    """Return the device id of this request's device cookie when it names `user`, else None.

    A forged or expired cookie, or one naming someone else, counts as none.
    """
    value = request.cookies.get(DEVICE_COOKIE)
    if user is None or value is None:
        return None
    try:
        claim = device_serializer().loads(
            value, max_age=current_app.config["DEVICE_COOKIE_SECONDS"]
        )
    except BadSignature:
        return None
    if claim["user"] != user["id"]:
        return None
    return claim["device"]


def give_device_cookie(response, user_id, device=None):
    """Let this browser be a known device of the user at later logins (a fresh id if new)."""
    config = current_app.config
    claim = {"user": user_id, "device": device or secrets.token_urlsafe(16)}
    response.set_cookie(
        DEVICE_COOKIE,
        device_serializer().dumps(claim),
        max_age=config["DEVICE_COOKIE_SECONDS"],
        # Only the login form needs it.
        path=url_for("auth.login"),
        secure=bool(config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        samesite="Lax",
    )
    return response


def init_app(app):
    """Apply the protections to every request; call before registering blueprints."""
    app.request_class = FormRequest
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request(refuse_cross_site_requests)
    app.after_request(set_security_headers)
