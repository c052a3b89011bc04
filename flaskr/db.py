"""The database: per-context connections, transactions, migrations and database commands.

SQLite (a file path in DATABASE) is the default; a postgresql:// URL selects PostgreSQL,
whose differences live in flaskr.postgres. Views use the connection get_db() returns
the same way on both.
"""

import errno
import functools
import os
import sqlite3
import stat
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources

import click
from flask import current_app, g, has_app_context
from flask.cli import with_appcontext

SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")

# SQLite's result codes (the low byte of an extended code) that report the server's
# condition rather than a bug: the database cannot take a write right now. Each heals
# once its cause goes (room freed, write access restored, the lock released).
FAULTS = {
    sqlite3.SQLITE_BUSY: "another writer held the lock past the busy timeout",
    sqlite3.SQLITE_LOCKED: "another writer held the lock past the busy timeout",
    sqlite3.SQLITE_READONLY: "the database is read-only",
    sqlite3.SQLITE_IOERR: "a disk I/O error",
    sqlite3.SQLITE_FULL: "the disk or the database is full",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
}

# The same conditions as the file system reports them (errno of an OSError), while an
# uploaded image is written or removed; any other OSError is a bug.
STORAGE_FAULTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "the server may not write there",
    errno.EPERM: "the server may not write there",
    errno.EIO: "a disk I/O error",
}

try:
    from . import postgres
except ImportError:  # pragma: no cover - installed without the postgresql extra
    postgres = None

# The DATABASE setting: a file path (SQLite) or one of these URLs (PostgreSQL).
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")

# Every error a database call can raise, on either backend.
ERRORS = (sqlite3.Error,) if postgres is None else (sqlite3.Error, postgres.psycopg.Error)

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


def is_postgresql(database):
    """Whether a DATABASE setting names a PostgreSQL database (a URL) rather than a file."""
    return database.startswith(POSTGRESQL_SCHEMES)


def backend(db):
    """Return the backend a connection talks to: "sqlite" or "postgresql"."""
    return getattr(db, "backend", "sqlite")


def utc_time(seconds=0):
    """Return now plus seconds (minus, if negative) as times are stored: 'YYYY-MM-DD HH:MM:SS', UTC.

    Both backends compare such a string with a stored time; cut-offs are computed here
    rather than in each dialect's date functions.
    """
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def inserted_id(cursor):
    """Return the id an INSERT ... RETURNING id gave back.

    Every row is read: SQLite reports an error of the write itself (a full database) only
    when the statement runs to its end, which reading just the first row never asks for.
    """
    ((id,),) = cursor.fetchall()
    return id


def get_db():
    """Return this app context's connection, opening it on first use."""
    if "db" not in g:
        pools = current_app.extensions.get("postgresql")
        if pools is not None:
            g.db = pools.connect()
            return g.db
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
    Whatever fails, COMMIT included, the transaction is rolled back and the first error
    is the one raised, so the connection is never left inside a failed transaction.
    """
    db = db or get_db()
    if backend(db) == "postgresql":
        db.begin_write()
    else:
        db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise


def rollback(db):
    """End the connection's transaction, if SQLite has not already ended it.

    A full disk or an I/O error can make SQLite roll back by itself; ROLLBACK would
    then fail and hide the error that matters. A connection that cannot roll back is
    closed (which rolls back and releases its locks), never used again.
    """
    if not db.in_transaction:
        return
    try:
        db.execute("ROLLBACK")
    except ERRORS:
        db.close()
        if has_app_context() and g.get("db") is db:
            g.pop("db")


def fault_cause(error):
    """Return the condition a database or storage error reports (disk full...), or None.

    None means a genuine programming error, such as a syntax error or a missing table.
    """
    if isinstance(error, OSError):
        return STORAGE_FAULTS.get(error.errno)
    if postgres is not None and isinstance(error, postgres.psycopg.Error):
        return postgres.fault_cause(error)
    if not isinstance(error, sqlite3.OperationalError):
        return None
    return FAULTS.get(getattr(error, "sqlite_errorcode", 0) & 0xFF)


def repair_journal_modes(path):
    """Make the write-ahead log and its index writable again once the database file is.

    A connection opened while the database file was read-only (mode 0444) creates them
    with its mode, and SQLite never changes it back: restoring the database's mode alone
    would leave every later connection read-only, even after a restart.
    """
    if not os.access(path, os.W_OK):
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    for journal in (f"{path}-wal", f"{path}-shm"):
        if os.path.exists(journal) and not os.access(journal, os.W_OK):
            try:
                os.chmod(journal, mode)
            except OSError:
                pass  # another user's file: only the operator can change it


def write_problem(db, min_free_bytes, commit=False):
    """Return why the database cannot take a write now (as fault_cause says), or None.

    Takes the write lock (waiting up to the busy timeout, as a write would) and rewrites
    the schema version in place: a read-only file or connection, or a lock held too
    long, shows here. Only with commit does the rewrite reach the disk, which also shows
    a disk that fails writes; otherwise it is rolled back, so that a routine check
    changes nothing (and empties no page cache). Then checks the room left for writes,
    under SQLite's page limit and on the file system, against min_free_bytes (SQLite
    only: a PostgreSQL server reports a full disk as a fault of the write itself).
    """
    if backend(db) == "postgresql":
        return postgres.write_problem(db, commit)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f"PRAGMA user_version = {schema_version(db)}")
            if commit:
                db.execute("COMMIT")
        finally:
            rollback(db)
        page_size, pages, max_pages, free_pages = (
            db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_size", "page_count", "max_page_count", "freelist_count")
        )
        path = db.execute("PRAGMA database_list").fetchone()["file"]
    except sqlite3.OperationalError as e:
        cause = fault_cause(e)
        if cause is None:
            raise
        return cause
    if (max_pages - pages + free_pages) * page_size < min_free_bytes:
        return "the database has reached its size limit (max_page_count)"
    disk = os.statvfs(os.path.dirname(path))
    if disk.f_bavail * disk.f_frsize < min_free_bytes:
        return f"less than {min_free_bytes:,} bytes are free on the database's disk"
    return None


@functools.cache
def migrations(kind="sqlite"):
    """Return a backend's packaged migrations as (version, name, sql), in order."""
    folder = resources.files("flaskr").joinpath("migrations")
    if kind == "postgresql":
        folder = folder.joinpath("postgresql")
    return sorted(
        (int(entry.name.partition("_")[0]), entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )


def latest_version(kind="sqlite"):
    """Return the schema version this code expects on a backend."""
    return migrations(kind)[-1][0]


def schema_version(db):
    """Return the schema version stored in the database."""
    if backend(db) == "postgresql":
        return postgres.schema_version(db)
    return db.execute("PRAGMA user_version").fetchone()[0]


def table_names(db):
    """Return the names of Flaskr's tables (the full-text index's own tables left out)."""
    if backend(db) == "postgresql":
        return postgres.table_names(db)
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        " AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'post_fts%'"
    ).fetchall()
    return [row[0] for row in rows]


def identity_columns(db):
    """Return (table, column) of PostgreSQL's identity columns, whose sequences number rows."""
    sql = (
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    )
    return [tuple(row) for row in db.execute(sql)]


def advance_sequences(db):
    """Make PostgreSQL number new rows after the copied ids (SQLite's counters follow)."""
    if backend(db) != "postgresql":
        return
    for table, column in identity_columns(db):
        db.execute(
            f'SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX("{column}"), 0) + 1, false)'
            f' FROM "{table}"',
            (f'"{table}"', column),
        )


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
    kind = backend(db)
    if kind == "sqlite":
        db.execute("PRAGMA journal_mode = WAL")
    applied = []
    for number, name, sql in migrations(kind):
        with transaction(db):
            # Read the version inside the write lock: two init-db runs at once apply
            # each migration exactly once.
            current = schema_version(db)
            if current >= number:
                continue
            if kind == "postgresql":
                postgres.apply_migration(db, sql)
                postgres.set_schema_version(db, number)
            else:
                for statement in split_statements(sql):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
        applied.append(name)
    return applied


def init_db():
    """Create the database, or upgrade an existing one in place without losing data."""
    db = get_db()
    version, latest = schema_version(db), latest_version(backend(db))
    if version > latest:
        raise click.ClickException(
            f"The database is at schema version {version}, newer than this Flaskr ({latest})."
        )
    return migrate(db)


def reset_db():
    """Drop every table, leaving an empty database at schema version 0."""
    db = get_db()
    if backend(db) == "postgresql":
        with transaction(db):
            postgres.reset(db)
        return
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
    database = current_app.config["DATABASE"]
    if is_postgresql(database):
        return postgres.backup(database, path)
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
    applied = init_db()
    click.echo("Initialized the database.")
    for name in applied or ():
        click.echo(f"  applied {name}")
    from .uploads import move_files_into_database  # uploads imports this module

    for line in move_files_into_database():
        click.echo(line)


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(path):
    """Write a consistent copy of the database to PATH while the server runs."""
    integrity = backup_db(path)
    if is_postgresql(current_app.config["DATABASE"]):
        click.echo(f"Backed up the database to {path} (pg_dump's custom format).")
    else:
        click.echo(f"Backed up the database to {path} (integrity check: {integrity}).")


def init_app(app):
    """Register database teardown and commands with the application."""
    database = app.config["DATABASE"]
    if is_postgresql(database):
        app.extensions["postgresql"] = postgres.Pools(
            database, app.config["DATABASE_POOL_SIZE"], app.config["SQLITE_BUSY_TIMEOUT_MS"]
        )
    if app.config["SQLITE_SYNCHRONOUS"] not in SYNCHRONOUS_LEVELS:
        raise ValueError(f"SQLITE_SYNCHRONOUS must be one of {', '.join(SYNCHRONOUS_LEVELS)}")
    # Before this process opens the database: a read-only episode may have left its
    # journal files read-only (see repair_journal_modes).
    repair_journal_modes(app.config["DATABASE"])
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
    app.cli.add_command(backup_command)
