"""Web safety: cross-site request refusal, security headers, id bounds, login throttling."""

from flask import abort, current_app, request
from werkzeug.exceptions import TooManyRequests
from werkzeug.routing import IntegerConverter

from .db import transaction
from .forms import FormRequest

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
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    return response


def wait_for(db, column, value, limit, window):
    """Seconds until fewer than `limit` failures for `column` = value are in the window (0: none).

    That is when the limit-th newest failure leaves the window; one indexed lookup.
    """
    row = db.execute(
        f"SELECT CAST(strftime('%s', at) AS INTEGER) + ? - CAST(strftime('%s', 'now') AS INTEGER)"
        f" FROM login_failure WHERE {column} = ? AND at > datetime('now', ?)"
        " ORDER BY at DESC LIMIT 1 OFFSET ?",
        (window, value, f"-{window} seconds", limit - 1),
    ).fetchone()
    return 0 if row is None else max(1, row[0])


def start_login_attempt(username, address):
    """Count a login attempt as a failure until login_succeeded says otherwise.

    Aborts with 429 (and Retry-After) when the username or the address has failed
    too often within the window. Checking and recording happen in one write
    transaction, so parallel guesses cannot slip past the limit together.
    """
    config = current_app.config
    window = config["LOGIN_WINDOW_SECONDS"]
    with transaction() as db:
        db.execute(
            "DELETE FROM login_failure WHERE at <= datetime('now', ?)", (f"-{window} seconds",)
        )
        wait = max(
            wait_for(db, "username", username, config["LOGIN_FAILURES_PER_USERNAME"], window),
            wait_for(db, "address", address, config["LOGIN_FAILURES_PER_ADDRESS"], window),
        )
        if not wait:
            db.execute(
                "INSERT INTO login_failure (username, address) VALUES (?, ?)", (username, address)
            )
    if wait:
        current_app.logger.info(
            "login throttled for %r from %s: retry after %ss", username, address, wait
        )
        minutes = -(-wait // 60)
        unit = "minute" if minutes == 1 else "minutes"
        raise TooManyRequests(
            f"Too many failed logins. Try again in {minutes} {unit}.", retry_after=wait
        )


def login_succeeded(username):
    """Forget the username's failures: its owner has just proved who they are."""
    with transaction() as db:
        db.execute("DELETE FROM login_failure WHERE username = ?", (username,))


def init_app(app):
    """Apply the protections to every request; call before registering blueprints."""
    app.request_class = FormRequest
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request(refuse_cross_site_requests)
    app.after_request(set_security_headers)
