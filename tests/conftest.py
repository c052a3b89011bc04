"""Fixtures: an app on a temporary database per test, its client and CLI runner, and auth."""

import os
from pathlib import Path

import pytest
from live import FAST_HASH, Server

from flaskr import create_app
from flaskr.db import get_db, init_db

DATA_SQL = (Path(__file__).parent / "data.sql").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Keep every test away from the developer's FLASKR_* variables and instance folder."""
    for name in list(os.environ):
        if name.startswith("FLASKR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLASKR_INSTANCE_PATH", str(tmp_path / "instance"))


@pytest.fixture
def make_app(tmp_path):
    """Return a factory for test apps on this test's database, with config overrides."""

    def make(**config):
        settings = {
            "TESTING": True,
            "DATABASE": str(tmp_path / "flaskr.sqlite"),
            "PASSWORD_HASH_METHOD": FAST_HASH,
            **config,
        }
        return create_app(settings)

    return make


@pytest.fixture
def app(make_app):
    """An app whose database holds the tutorial-shaped test data."""
    app = make_app()
    with app.app_context():
        init_db()
        get_db().executescript(DATA_SQL)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    """Log in and out through the real views."""

    def __init__(self, client):
        self._client = client

    def login(self, username="test", password="test"):
        return self._client.post("/auth/login", data={"username": username, "password": password})

    def logout(self):
        return self._client.get("/auth/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def query(app):
    """Return a function that runs one SQL statement on the test database and returns its rows.

    Rows come back as tuples; the one place tests read or poke the database directly.
    """

    def query(statement, params=()):
        with app.app_context():
            return [tuple(row) for row in get_db().execute(statement, params).fetchall()]

    return query


@pytest.fixture
def count(query):
    """Return a function that counts the rows of a table in the test database."""

    def count(table):
        return query(f"SELECT COUNT(*) FROM {table}")[0][0]

    return count


# Tables that log attempts keep their time out of a snapshot, so "nothing written" can be
# compared across a request; every other table is compared whole.
SNAPSHOT_COLUMNS = {
    "login_failure": "username, address",
    "registration_attempt": "address",
    "device_login_failure": "device",
}


@pytest.fixture
def snapshot(app, query):
    """Return a function that captures every table the views write, stored images included.

    Compare two captures to show a request wrote nothing (or exactly what it should).
    """

    def snapshot():
        tables = query(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'post_fts%'"
        )
        state = {
            name: sorted(query(f"SELECT {SNAPSHOT_COLUMNS.get(name, '*')} FROM {name}"), key=repr)
            for (name,) in tables
        }
        return state

    return snapshot


@pytest.fixture
def servers(tmp_path, monkeypatch):
    """Start servers on one fresh database (configured by FLASKR_* only); stop them after."""
    instance = tmp_path / "instance"
    monkeypatch.setenv("FLASKR_SECRET_KEY", "live-test-key")
    monkeypatch.setenv("FLASKR_PASSWORD_HASH_METHOD", FAST_HASH)
    started = []

    def start():
        server = Server(instance)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
