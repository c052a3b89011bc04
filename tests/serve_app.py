"""Serve Flaskr for live tests: waitress on 127.0.0.1, on an OS-chosen port, its URL printed.

Configured like a deployment, through FLASKR_* variables (instance folder, database, hash
method); the database is created or upgraded with init_db before the port is printed, so
the server is ready when its port is known. The app is served as it is, with its own
security headers: clients see what a visitor's browser sees.
"""

import os
import sys

import waitress

from flaskr import create_app
from flaskr.db import init_db


def main():
    app = create_app()
    with app.app_context():
        init_db()
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    print(f"Serving on http://{server.effective_host}:{server.effective_port}/", flush=True)
    # Nothing else may write to the pipe the port went through.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    server.run()


if __name__ == "__main__":
    main()
