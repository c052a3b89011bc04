"""SQLite: per-context connections, pragmas, transactions, migrations and database commands."""

import functools
import os
import shutil
import sqlite3
from contextlib import contextmanager
from datetime import datetime
from importlib import resources

import click
from flask import current_app, g
from flask.cli import with_appcontext

SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")

# TIMESTAMP columns come back as datetime objects, as in the tutorial; registered here
# because the standard library's default converter is deprecated.
sqlite3.register_converter("timestamp", lambda value: datetime.fromisoformat(value.decode()))


def connect(path, synchronous="FULL", busy_timeout_ms=5000):
    """Open a connection with the pragmas every Flaskr connection uses.

    The connection is in autocommit mode: writes that belong together go through
    `transaction()`, which starts with BEGIN IMMEDIATE.
    """
    db = sqlite3.connect(
        path,
        detect_types=sqlite3.PARSE_DECLTYPES,
        isolation_level=None,
        timeout=busy_timeout_ms / 1000,
    )
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    return db


def get_db():
    """Return this app context's connection, opening it on first use."""
    if "db" not in g:
        g.db = connect(
            current_app.config["DATABASE"],
            current_app.config["SQLITE_SYNCHRONOUS"],
            current_app.config["SQLITE_BUSY_TIMEOUT_MS"],
        )
    return g.db


def close_db(e=None):
    """Close the connection at the end of the app context, if one was opened."""
    db = g.pop("db", None)
    if db is not None:
        db.close()


@contextmanager
def transaction(db=None):
    """Run a block of statements as one write transaction, taking the write lock first.

    BEGIN IMMEDIATE makes a read-then-write safe: no other writer can change what was
    read before this transaction commits, and a busy database waits instead of failing.
    """
    db = db or get_db()
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@functools.cache
def migrations():
    """Return the packaged migrations as (version, name, sql), in order."""
    folder = resources.files("flaskr").joinpath("migrations")
    return sorted(
        (int(entry.name.partition("_")[0]), entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )


def latest_version():
    """Return the schema version this code expects."""
    return migrations()[-1][0]


def schema_version(db):
    """Return the schema version stored in the database."""
    return db.execute("PRAGMA user_version").fetchone()[0]


def split_statements(sql):
    """Split a migration script into complete statements (triggers included)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        raise ValueError(f"incomplete SQL statement: {current.strip()[:60]}")
    return statements


def migrate(db):
    """Apply every migration newer than the database, each in its own transaction."""
    db.execute("PRAGMA journal_mode = WAL")
    applied = []
    for number, name, sql in migrations():
        with transaction(db):
            # Read the version inside the write lock: two init-db runs at once apply
            # each migration exactly once.
            current = schema_version(db)
            if current >= number:
                continue
            for statement in split_statements(sql):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        applied.append(name)
    return applied


def init_db():
    """Create the database, or upgrade an existing one in place without losing data."""
    db = get_db()
    version, latest = schema_version(db), latest_version()
    if version > latest:
        raise click.ClickException(
            f"The database is at schema version {version}, newer than this Flaskr ({latest})."
        )
    return migrate(db)


def reset_db():
    """Drop every table, leaving an empty database at schema version 0."""
    db = get_db()
    db.execute("PRAGMA foreign_keys = OFF")
    with transaction(db):
        # Virtual tables own their shadow tables and drop them; triggers and indexes
        # go with their tables.
        tables = db.execute(
            "SELECT name FROM pragma_table_list WHERE schema = 'main'"
            " AND type IN ('table', 'virtual') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        ).fetchall()
        for (name,) in tables:
            db.execute(f'DROP TABLE IF EXISTS "{name}"')
        db.execute("PRAGMA user_version = 0")
    db.execute("PRAGMA foreign_keys = ON")


def backup_db(path):
    """Copy the live database to a new file at path, consistently, while others write.

    Returns the copy's integrity check result ("ok" for a sound copy).
    """
    if os.path.exists(path):
        raise click.ClickException(f"{path} already exists; choose a new file name.")
    tmp = f"{path}.partial"
    target = sqlite3.connect(tmp)
    try:
        get_db().backup(target)
        # A self-contained single file, whatever the live database's journal mode.
        target.execute("PRAGMA journal_mode = DELETE")
        (integrity,) = target.execute("PRAGMA integrity_check").fetchone()
    finally:
        target.close()
    os.replace(tmp, path)
    return integrity


@click.command("init-db")
@click.option("--reset", is_flag=True, help="Delete all data first and start empty.")
@click.option("--yes", is_flag=True, help="With --reset: do not ask for confirmation.")
@with_appcontext
def init_db_command(reset, yes):
    """Create the database, or upgrade it in place to the current schema."""
    if reset:
        if not yes:
            click.confirm(
                "This deletes every user, post, comment and uploaded image. Continue?",
                abort=True,
            )
        reset_db()
        shutil.rmtree(current_app.config["UPLOAD_FOLDER"], ignore_errors=True)
    applied = init_db()
    click.echo("Initialized the database.")
    for name in applied or ():
        click.echo(f"  applied {name}")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(path):
    """Write a consistent copy of the database to PATH while the server runs."""
    integrity = backup_db(path)
    click.echo(f"Backed up the database to {path} (integrity check: {integrity}).")


def init_app(app):
    """Register database teardown and commands with the application."""
    if app.config["SQLITE_SYNCHRONOUS"] not in SYNCHRONOUS_LEVELS:
        raise ValueError(f"SQLITE_SYNCHRONOUS must be one of {', '.join(SYNCHRONOUS_LEVELS)}")
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
    app.cli.add_command(backup_command)
