"""Serve Flaskr for the browser tests: waitress on 127.0.0.1, on a free port printed to stdout.

Configured like a deployment, through FLASKR_* variables (instance folder, database, hash
method); the database is created with init_db before the first request.
"""

import os
import sys

import waitress

from flaskr import create_app
from flaskr.db import init_db

# The policy the site sends (SPEC §5); set here only when the app does not send one yet,
# so that the browser tests already fail on inline script or style in a template.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def add_default_csp(response):
    """Send the site's Content-Security-Policy unless the app already did."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


def main():
    app = create_app()
    app.after_request(add_default_csp)
    with app.app_context():
        init_db()
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    print(server.effective_port, flush=True)
    # Nothing else may write to the pipe the port went through.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    server.run()


if __name__ == "__main__":
    main()
