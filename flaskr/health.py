"""Liveness: /hello and /healthz, for people and for load balancers."""

import sqlite3

from flask import Blueprint

from .db import get_db, latest_version, schema_version

bp = Blueprint("health", __name__)


@bp.route("/hello")
def hello():
    """Answer a plain greeting, as the tutorial does."""
    return "Hello, World!"


@bp.route("/healthz")
def healthz():
    """Report ok after a round trip to the database; 503 when it cannot be read."""
    try:
        db = get_db()
        db.execute("SELECT id FROM user LIMIT 1").fetchall()
        version = schema_version(db)
    except sqlite3.Error:
        return {"status": "unavailable", "reason": "the database cannot be read"}, 503
    if version < latest_version():
        return {"status": "unavailable", "reason": "run flask --app flaskr init-db"}, 503
    return {"status": "ok"}
