"""Liveness: /hello and /healthz, for people and for load balancers."""

import threading
from time import monotonic

from flask import Blueprint, current_app

from .db import (
    ERRORS,
    backend,
    get_db,
    latest_version,
    repair_journal_modes,
    schema_version,
    write_problem,
)

bp = Blueprint("health", __name__)

# What a client is told to wait after a fault; freeing a disk or a lock takes a moment.
FAULT_RETRY_AFTER_SECONDS = 10
# How long one answer to "can the database take a write?" stands, per process: health
# checks from many balancers cost one probe a second at most.
WRITE_CHECK_SECONDS = 1.0


class WriteCheck:
    """The latest answer to "can the database take a write?", probed at most once a period.

    While one thread probes (which can wait for the write lock), the others answer with
    the previous result instead of queueing behind it. After a request met a database
    fault, probes commit their write until one succeeds: only a real write shows that a
    disk which failed writes takes them again.
    """

    def __init__(self, period=WRITE_CHECK_SECONDS):
        self.period = period
        self.lock = threading.Lock()
        self.checked_at = None
        self.problem = None
        self.fault_seen = False

    def note_fault(self):
        """Remember that a request met a database fault, for the next probe."""
        self.fault_seen = True

    def fresh(self):
        """Whether the latest answer is recent enough to give again."""
        return self.checked_at is not None and monotonic() - self.checked_at < self.period

    def current_problem(self, probe):
        """Return why writes fail now (None: they work), calling probe(commit) when stale."""
        if self.fresh():
            return self.problem
        # Only the very first check waits for a probe in progress: there is no answer yet.
        if not self.lock.acquire(blocking=self.checked_at is None):
            return self.problem
        try:
            if not self.fresh():
                commit, self.fault_seen = self.fault_seen, False
                self.problem = probe(commit)
                self.checked_at = monotonic()
                if self.problem is not None:
                    self.fault_seen = True
            return self.problem
        finally:
            self.lock.release()


def write_check():
    """Return this application's WriteCheck (one per process), made on first use."""
    return current_app.extensions.setdefault("write_check", WriteCheck())


@bp.route("/hello")
def hello():
    """Answer a plain greeting, as the tutorial does."""
    return "Hello, World!"


@bp.route("/healthz")
def healthz():
    """Report ok when the database can be read and take a write; 503 otherwise."""
    try:
        db = get_db()
        db.execute("SELECT id FROM user LIMIT 1").fetchall()
        version = schema_version(db)
    except ERRORS:
        return unavailable("the database cannot be read")
    if version < latest_version(backend(db)):
        return unavailable("run flask --app flaskr init-db")
    min_free = current_app.config["HEALTH_MIN_FREE_BYTES"]
    problem = write_check().current_problem(lambda commit: write_problem(db, min_free, commit))
    if problem is not None:
        repair_journal_modes(current_app.config["DATABASE"])
        return unavailable(f"the database cannot take a write: {problem}")
    return {"status": "ok"}


def unavailable(reason):
    """A 503 answer to a health check, saying why and when to ask again."""
    retry_after = {"Retry-After": str(FAULT_RETRY_AFTER_SECONDS)}
    return {"status": "unavailable", "reason": reason}, 503, retry_after
