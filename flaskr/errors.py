"""Error pages in the site's layout, for every HTTP error; never a traceback."""

from flask import render_template
from werkzeug.exceptions import HTTPException


def render_error(error):
    """Render an HTTP error as a page of the site, keeping its status and headers."""
    response = error.get_response()
    response.data = render_template("errors/error.html", error=error)
    response.content_type = "text/html; charset=utf-8"
    return response


def init_app(app):
    """Register the error pages with the application.

    An unexpected exception reaches this handler as InternalServerError (after Flask
    has logged its traceback), unless the app propagates exceptions for testing.
    """
    app.register_error_handler(HTTPException, render_error)
