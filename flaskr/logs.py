"""Logging: one line per request to stderr, through the application's logger."""

import logging
import time

from flask import current_app, g, request
from flask.logging import default_handler

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def start_timer():
    """Note when the request started."""
    g.request_started = time.perf_counter()


def printable(text):
    """Return text with control characters escaped, so that it cannot forge a log line."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def log_request(response):
    """Log address, method, path, status and duration; never the body or form fields."""
    now = time.perf_counter()
    elapsed_ms = (now - g.get("request_started", now)) * 1000
    current_app.logger.info(
        "%s %s %s %s %.1fms",
        request.remote_addr,
        request.method,
        printable(request.path),
        response.status_code,
        elapsed_ms,
    )
    return response


def init_app(app):
    """Send the application's INFO lines to stderr, once, and log every request."""
    # Lines go through the root logger's handler only: configured here unless the host
    # process configured logging first. The server's own set-up then finds logging
    # configured, and its lines and ours share one format instead of printing twice.
    logging.basicConfig(format=LOG_FORMAT)
    app.logger.removeHandler(default_handler)
    app.logger.setLevel(logging.INFO)
    app.before_request(start_timer)
    app.after_request(log_request)
