# Example instance configuration for Flaskr.
#
# Copy this file to instance/config.py (or to $FLASKR_INSTANCE_PATH/config.py) and
# uncomment what you need. Environment variables FLASKR_<NAME> override these values,
# for example FLASKR_POSTS_PER_PAGE=10. Everything else in instance/ is ignored by git:
# the database (which holds the uploaded images and the generated secret key) lives there.

# Signs session cookies. Leave unset to have Flaskr generate one on first use and keep
# it in the database, for every server of the site. Never use "dev" or another guessable value.
# SECRET_KEY = "a long random string, e.g. from: python -c 'import secrets; print(secrets.token_hex())'"

# Where the SQLite database lives (default: flaskr.sqlite in the instance folder).
# DATABASE = "/var/lib/flaskr/flaskr.sqlite"

# Posts per page on the index, tag, author and search pages.
# POSTS_PER_PAGE = 5

# Let visitors create accounts.
# REGISTRATION_OPEN = True

# Shortest password accepted at registration.
# PASSWORD_MIN_LENGTH = 8

# Largest request body in bytes; larger uploads get a 413 page.
# MAX_CONTENT_LENGTH = 8 * 1024 * 1024

# A form's text in bytes (a whole url-encoded form, or each multipart text field) and its
# number of fields; larger forms get a 413 page. The default leaves room for the longest
# post body (100,000 characters) in any script, percent-encoded.
# MAX_FORM_MEMORY_SIZE = 2 * 1024 * 1024
# MAX_FORM_PARTS = 1000

# Uploaded images: largest file in bytes, largest size in pixels (every frame of an
# animation counted), most frames of an animation. Images are kept in the database; init-db
# moves those an older Flaskr kept in UPLOAD_FOLDER (instance/uploads) into it.
# IMAGE_MAX_BYTES = 5 * 1024 * 1024
# IMAGE_MAX_PIXELS = 25_000_000
# IMAGE_MAX_FRAMES = 100
# UPLOAD_FOLDER = "/var/lib/flaskr/uploads"

# Bytes of visitors' pages kept in memory until the database changes (a page larger
# than a sixteenth of this is not kept); 0 turns the cache off.
# PAGE_CACHE_BYTES = 32 * 1024 * 1024

# SQLite durability: FULL (default) survives power loss; NORMAL is faster and
# survives application crashes.
# SQLITE_SYNCHRONOUS = "FULL"

# How long a write waits for another writer's lock, in milliseconds, before the request
# gets "503 Service Unavailable" with Retry-After.
# SQLITE_BUSY_TIMEOUT_MS = 5000

# /healthz answers 503 when less room than this (bytes) is left for the database to grow,
# on its disk or under SQLite's max_page_count.
# HEALTH_MIN_FREE_BYTES = 256 * 1024

# Number of reverse proxies in front of Flaskr whose X-Forwarded-* headers to trust.
# PROXY_FIX = 1

# The site's public address: every absolute URL (feeds, sitemap) uses it, and requests
# for any other host get "400 Bad Request". Set it in production.
# SITE_URL = "https://blog.example.org"

# Serve the session cookie only over https (set when Flaskr is behind TLS).
# SESSION_COOKIE_SECURE = True

# A login ends after this long (a datetime.timedelta or seconds), even if the browser keeps it.
# PERMANENT_SESSION_LIFETIME = 31 * 24 * 3600

# Login throttling: after this many failed logins for one username, or from one address,
# within the window (seconds), further attempts get "429 Too Many Requests".
# LOGIN_FAILURES_PER_USERNAME = 5
# LOGIN_FAILURES_PER_ADDRESS = 20
# LOGIN_WINDOW_SECONDS = 900

# Each successful login leaves a signed device cookie. Logins from a browser holding one for
# the username tried skip the two limits above and have their own: after this many failures
# within the window, that browser alone gets 429. The cookie is honoured for this long (seconds).
# LOGIN_FAILURES_PER_DEVICE = 5
# DEVICE_COOKIE_SECONDS = 365 * 24 * 3600

# Registration throttling: at most this many registrations from one address within the
# window (seconds); further ones get "429 Too Many Requests".
# REGISTRATIONS_PER_ADDRESS = 5
# REGISTRATION_WINDOW_SECONDS = 3600
