"""Configuration: defaults, the instance config file, FLASKR_* variables and the secret key."""

import os
import secrets

from flask.sessions import SecureCookieSessionInterface

from .db import (
    POSTGRESQL_SCHEMES,
    backend,
    fault_cause,
    get_db,
    latest_version,
    postgres,
    schema_version,
    transaction,
)

DEFAULTS = {
    "POSTS_PER_PAGE": 5,
    # The time zone that "Publish at" is typed and scheduled times are shown in.
    "TIMEZONE": "UTC",
    "REGISTRATION_OPEN": True,
    "PASSWORD_MIN_LENGTH": 8,
    # scrypt at the OWASP Password Storage minimum: N=2**17, r=8, p=1.
    "PASSWORD_HASH_METHOD": "scrypt:131072:8:1",
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    # A form's text in bytes (a url-encoded body, each multipart text field): room for the
    # longest body, 100,000 characters of up to 4 UTF-8 bytes percent-encoded (1.2 MB).
    "MAX_FORM_MEMORY_SIZE": 2 * 1024 * 1024,
    # Fields in one form (url-encoded or multipart); ours have fewer than ten.
    "MAX_FORM_PARTS": 1000,
    "IMAGE_MAX_BYTES": 5 * 1024 * 1024,
    "IMAGE_MAX_PIXELS": 25_000_000,
    # Frames of an animated image; its pixels (all frames together) count against the above.
    "IMAGE_MAX_FRAMES": 100,
    # Visitors' pages kept in memory, in bytes (32 MB); 0 turns the page cache off.
    "PAGE_CACHE_BYTES": 32 * 1024 * 1024,
    "SQLITE_SYNCHRONOUS": "FULL",
    # How long a write waits for another writer (and a request for a free connection).
    "SQLITE_BUSY_TIMEOUT_MS": 5000,
    # PostgreSQL: connections each server process keeps at most (waitress runs 4 threads).
    "DATABASE_POOL_SIZE": 8,
    # /healthz answers 503 when less room than this is left for the database to grow.
    "HEALTH_MIN_FREE_BYTES": 256 * 1024,
    "PROXY_FIX": 0,
    # The site's public address (https://blog.example.org): every absolute URL uses it,
    # and requests naming another host get 400. Empty: each request's own host is used.
    "SITE_URL": "",
    # What search results and link previews say about the site's list pages.
    "SITE_DESCRIPTION": "A blog written by its members, in Markdown, with feeds for every tag.",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # Failed logins within the window after which further attempts get 429.
    "LOGIN_FAILURES_PER_USERNAME": 5,
    "LOGIN_FAILURES_PER_ADDRESS": 20,
    "LOGIN_WINDOW_SECONDS": 15 * 60,
    # Failed logins within the window after which a known device (one holding a device
    # cookie for the username tried) gets 429; its attempts escape the two limits above.
    "LOGIN_FAILURES_PER_DEVICE": 5,
    # How long a device cookie (given at each successful login) is honoured, in seconds.
    "DEVICE_COOKIE_SECONDS": 365 * 24 * 60 * 60,
    # Registrations from one address within the window after which further ones get 429.
    "REGISTRATIONS_PER_ADDRESS": 5,
    "REGISTRATION_WINDOW_SECONDS": 60 * 60,
}

# Keys that must never sign a production session.
WEAK_KEYS = {None, "", "dev"}
# Where an older Flaskr kept its generated key: adopted into the database once.
KEY_FILENAME = "secret_key"


def configure(app, test_config=None):
    """Fill app.config: defaults, then instance/config.py, then FLASKR_* variables.

    A given test_config replaces the instance file and the environment.
    """
    app.config.from_mapping(DEFAULTS, UPLOAD_FOLDER=os.path.join(app.instance_path, "uploads"))
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("FLASKR")
    else:
        app.config.from_mapping(test_config)
    app.config["DATABASE"] = database_setting(app, test_config is None)

    os.makedirs(app.instance_path, exist_ok=True)
    if app.config.get("SECRET_KEY") in WEAK_KEYS:
        # Without a configured key, the site's generated one is read from the database
        # when first needed (the database may not exist yet: init-db comes later).
        app.config["SECRET_KEY"] = None if test_config is None else secrets.token_hex(32)
    app.session_interface = SessionInterface()


def database_setting(app, from_environment):
    """Return the database to use: DATABASE, else a postgresql:// DATABASE_URL, else the file.

    Anything that is neither a file path nor a PostgreSQL URL stops the start with one
    line naming the setting.
    """
    database = app.config.get("DATABASE")
    setting = "FLASKR_DATABASE"
    if database is None:
        database = os.environ.get("DATABASE_URL") if from_environment else None
        setting = "DATABASE_URL"
    if database is None:
        return os.path.join(app.instance_path, "flaskr.sqlite")
    if not isinstance(database, str) or not database:
        raise SettingError(f"{setting} must be a file path or a postgresql:// URL.")
    if database.startswith(POSTGRESQL_SCHEMES):
        if postgres is None:  # pragma: no cover - installed without the postgresql extra
            raise SettingError(
                f"{setting} is a postgresql:// URL, but PostgreSQL support is not installed:"
                " pip install 'flaskr[postgresql]'"
            )
        return database
    if setting == "DATABASE_URL":
        raise SettingError(
            "DATABASE_URL is not a postgresql:// URL: set FLASKR_DATABASE to a file path"
            " or a postgresql:// URL."
        )
    if "://" in database:
        raise SettingError(
            f"FLASKR_DATABASE must be a file path or a postgresql:// URL,"
            f" not a {database.partition(':')[0]}: URL."
        )
    return database


class SettingError(SystemExit):
    """A setting Flaskr cannot start with: one line naming it, no traceback."""


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, signed with the key signing_key() loads."""

    def open_session(self, app, request):
        try:
            signing_key(app)
        except Exception as e:
            # A database fault, or a database init-db has not made yet: no session for
            # this request (a page that needs the database answers for itself).
            if fault_cause(e) is None:
                db = get_db()
                if schema_version(db) >= latest_version(backend(db)):
                    raise
            return None
        return super().open_session(app, request)


def signing_key(app):
    """Return the key that signs sessions and device cookies.

    The configured SECRET_KEY, or else the site's generated key, loaded from the database
    once per process: every server of the site signs with the same key.
    """
    if app.config["SECRET_KEY"] is None:
        app.config["SECRET_KEY"] = load_secret_key(os.path.join(app.instance_path, KEY_FILENAME))
    return app.config["SECRET_KEY"]


def load_secret_key(key_file):
    """Return the site's generated key from the database, storing one first if there is none.

    The key an older Flaskr kept in key_file is adopted, so that sessions and device
    cookies survive the upgrade; otherwise a new random one is made.
    """
    db = get_db()
    row = db.execute("SELECT value FROM signing_key WHERE id = 1").fetchone()
    if row is not None:
        return row[0]
    try:
        with open(key_file, encoding="ascii") as f:
            key = f.read().strip()
    except FileNotFoundError:
        key = ""
    if key in WEAK_KEYS:
        key = secrets.token_hex(32)
    with transaction() as db:
        db.execute(
            "INSERT INTO signing_key (id, value) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
            (key,),
        )
        # Another server may have stored its key since the read above: that one wins.
        (key,) = db.execute("SELECT value FROM signing_key WHERE id = 1").fetchone()
    return key
