"""Logging: one line per request to stderr, through the application's logger."""

import logging
import time

from flask import current_app, g, request


def start_timer():
    """Note when the request started."""
    g.request_started = time.perf_counter()


def log_request(response):
    """Log method, path, status and duration; never the body or form fields."""
    now = time.perf_counter()
    elapsed_ms = (now - g.get("request_started", now)) * 1000
    current_app.logger.info(
        "%s %s %s %s %.1fms",
        request.remote_addr,
        request.method,
        request.path,
        response.status_code,
        elapsed_ms,
    )
    return response


def init_app(app):
    """Log at INFO level and register the per-request log line."""
    app.logger.setLevel(logging.INFO)
    app.before_request(start_timer)
    app.after_request(log_request)
