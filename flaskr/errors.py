"""Error pages in the site's layout, for every HTTP error; never a traceback.

Database faults (a full disk, a read-only database, an I/O error, a lock held too long)
are the server's condition, not a bug: they answer 503 with Retry-After.
"""

from flask import current_app, render_template, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from .blog import newest_posts
from .caching import close_watch_after_fault
from .db import ERRORS, fault_cause, repair_journal_modes
from .health import FAULT_RETRY_AFTER_SECONDS, write_check
from .logs import printable

CANNOT_SAVE = (
    "The site cannot save anything right now, so your changes were not saved. "
    "Please try again shortly."
)
CANNOT_READ = "The site cannot read its data right now. Please try again shortly."

# The errors a reader meets (a wrong address, a refused or oversized request): their page
# offers a way on, a search box and the newest posts. A 5xx page reads nothing: the
# database may be why it is shown.
WAY_ON_ERRORS = frozenset({400, 403, 404, 405, 413, 429})
NEWEST_ON_ERROR_PAGES = 5


def ways_on(error):
    """Return the newest posts to offer on an error's page; none for server errors."""
    if error.code not in WAY_ON_ERRORS:
        return ()
    try:
        return newest_posts(NEWEST_ON_ERROR_PAGES)
    except ERRORS:
        # The page still explains the error when the list cannot be read.
        return ()


def render_error(error):
    """Render an HTTP error as a page of the site, keeping its status and headers."""
    response = error.get_response()
    response.data = render_template(
        "errors/error.html", error=error, newest=ways_on(error), way_on=error.code in WAY_ON_ERRORS
    )
    response.content_type = "text/html; charset=utf-8"
    return response


def handle_database_error(error):
    """Answer a database fault with 503 and Retry-After; let any other error be a 500.

    The cause is logged in one line without a traceback: it is the server's condition,
    not a bug, and the operator needs to know which one.
    """
    cause = fault_cause(error)
    if cause is None:
        raise error
    write_check().note_fault()
    repair_journal_modes(current_app.config["DATABASE"])
    close_watch_after_fault()
    current_app.logger.warning(
        "database fault on %s %s: %s (%s)", request.method, printable(request.path), cause, error
    )
    message = CANNOT_READ if request.method in ("GET", "HEAD") else CANNOT_SAVE
    return render_error(ServiceUnavailable(message, retry_after=FAULT_RETRY_AFTER_SECONDS))


def handle_storage_error(error):
    """Answer a storage fault (a temporary file on a full or read-only disk) with 503.

    Any other OSError is a bug and stays a 500. The cause is logged in one line.
    """
    cause = fault_cause(error)
    if cause is None:
        raise error
    write_check().note_fault()
    current_app.logger.warning(
        "storage fault on %s %s: %s (%s)", request.method, printable(request.path), cause, error
    )
    message = CANNOT_READ if request.method in ("GET", "HEAD") else CANNOT_SAVE
    return render_error(ServiceUnavailable(message, retry_after=FAULT_RETRY_AFTER_SECONDS))


def init_app(app):
    """Register the error pages with the application.

    An unexpected exception reaches the HTTP handler as InternalServerError (after Flask
    has logged its traceback), unless the app propagates exceptions for testing.
    """
    app.register_error_handler(HTTPException, render_error)
    for error in ERRORS:
        app.register_error_handler(error, handle_database_error)
    app.register_error_handler(OSError, handle_storage_error)
