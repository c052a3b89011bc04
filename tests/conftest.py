"""Fixtures: an app on a temporary database per test, its client and CLI runner, and auth.

Every test that touches the database runs twice, on SQLite and on PostgreSQL (a
throwaway cluster, see pg.py), unless it is marked sqlite_only: it is about SQLite itself.
"""

import os
from pathlib import Path

import pytest
from live import FAST_HASH, Server
from pg import Cluster, Databases

from flaskr import create_app
from flaskr.db import get_db, init_db, table_names

DATA_SQL = (Path(__file__).parent / "data.sql").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Keep every test away from the developer's FLASKR_* variables and instance folder."""
    for name in list(os.environ):
        if name.startswith("FLASKR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLASKR_INSTANCE_PATH", str(tmp_path / "instance"))


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    """Run each test that uses the database on both backends (SQLite only when marked)."""
    if "backend" in metafunc.fixturenames:
        backends = BACKENDS
        if metafunc.definition.get_closest_marker("sqlite_only"):
            backends = ("sqlite",)
        elif metafunc.definition.get_closest_marker("postgresql_only"):
            backends = ("postgresql",)
        metafunc.parametrize("backend", backends)


@pytest.fixture(scope="session")
def postgresql_databases():
    """Fresh PostgreSQL databases: on FLASKR_TEST_DATABASE_URL, or on a cluster of our own."""
    url = os.environ.get("FLASKR_TEST_DATABASE_URL")
    cluster = None if url else Cluster()
    databases = Databases(url or cluster.url)
    yield databases
    databases.close()
    if cluster is not None:
        cluster.stop()


def migrate_url(url):
    """Bring the database at url to the current schema, as init-db does."""
    app = create_app({"TESTING": True, "DATABASE": url})
    with app.app_context():
        init_db()
    close_connections(app)


@pytest.fixture
def database(backend, tmp_path, request):
    """This test's database: a file for SQLite, a new database (current schema) for PostgreSQL."""
    if backend == "sqlite":
        return str(tmp_path / "flaskr.sqlite")
    databases = request.getfixturevalue("postgresql_databases")
    name, url = databases.migrated(migrate_url)
    request.addfinalizer(lambda: databases.drop(name))
    return url


@pytest.fixture
def make_app(database):
    """Return a factory for test apps on this test's database, with config overrides."""
    made = []

    def make(**config):
        settings = {
            "TESTING": True,
            "DATABASE": database,
            "PASSWORD_HASH_METHOD": FAST_HASH,
            **config,
        }
        app = create_app(settings)
        made.append(app)
        return app

    yield make
    for app in made:
        close_connections(app)


def close_connections(app):
    """Close what an app keeps open on PostgreSQL (its pool, the page cache's watch)."""
    if "postgresql" in app.extensions:
        app.extensions["postgresql"].close()
        if "page_cache" in app.extensions:
            app.extensions["page_cache"].close_watch()


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
            cursor = get_db().execute(statement, params)
            # A statement without rows (UPDATE...) returns none, on either backend.
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

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
        with app.app_context():
            tables = table_names(get_db())
        state = {
            name: sorted(query(f"SELECT {SNAPSHOT_COLUMNS.get(name, '*')} FROM {name}"), key=repr)
            for name in tables
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
