"""PostgreSQL: connections from a pool, the dialect's differences, faults and backups.

Queries are written once, in the SQL both backends share; this module turns one into
PostgreSQL's form (placeholders, the reserved table name `user`) and gives connections
the interface of sqlite3's, so the views need not know which backend they talk to.
"""

import contextlib
import functools
import os
import re
import shutil
import subprocess
import threading

import click
import psycopg
from psycopg import pq
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

# Writers take this advisory lock for their whole transaction, so that, as SQLite's
# BEGIN IMMEDIATE does, one writer at a time reads and then writes: no lost update, no
# duplicate like, and migrations applied once however many servers run init-db at once.
WRITE_LOCK = 0x466C61736B72  # "Flaskr"

# SQLSTATE codes (and classes, by their first two characters) that report the server's
# condition rather than a bug; each heals once its cause goes.
FAULT_STATES = {
    "53100": "the database server's disk is full",
    "53200": "the database server is out of memory",
    "53300": "the database server has no connection to spare",
    "55P03": "another writer held the lock past the busy timeout",
    "57014": "a statement was cancelled",
    "25006": "the database is read-only",
    "40001": "a transaction conflicted with another; try again",
    "40P01": "a transaction conflicted with another; try again",
}
FAULT_CLASSES = {
    "08": "the database server cannot be reached",
    "53": "the database server is short of resources",
    "57": "the database server is shutting down or starting up",
    "58": "the database server met a disk I/O error",
}

# A quoted string, kept as it is; placeholders and names are rewritten around them.
LITERAL = re.compile(r"('(?:[^']|'')*')")
# The table `user` (a reserved word in PostgreSQL), not a column such as `user_id`.
USER_TABLE = re.compile(r'(?<![\w."])user(?![\w"])')

# Reads that must see one moment of the whole database (exports) begin with BEGIN.
SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ"


@functools.lru_cache(maxsize=2048)
def translate(sql, placeholders=True):
    """Return a query written for both backends in PostgreSQL's form.

    `?` becomes `%s` and every `%` is doubled (psycopg reads `%` everywhere, quoted
    strings included) unless the query takes no parameters; the table `user` is quoted
    outside quoted strings, whose text is otherwise left as it is.
    """
    if sql == "BEGIN":
        return SNAPSHOT
    parts = LITERAL.split(sql)
    for i, part in enumerate(parts):
        if i % 2 == 0:
            part = USER_TABLE.sub('"user"', part)
            if placeholders:
                part = part.replace("%", "%%").replace("?", "%s")
        elif placeholders:
            part = part.replace("%", "%%")
        parts[i] = part
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def row_class(names):
    """Return a tuple type whose items can also be read by column name, like sqlite3.Row."""
    index = {name: i for i, name in enumerate(names)}

    class Row(tuple):
        __slots__ = ()

        def __getitem__(self, key):
            if isinstance(key, str):
                return tuple.__getitem__(self, index[key])
            return tuple.__getitem__(self, key)

        def keys(self):
            return list(names)

    return Row


def make_row(cursor):
    """psycopg's row factory for rows that read like sqlite3.Row."""
    description = cursor.description or ()
    return row_class(tuple(column.name for column in description))


class Connection:
    """A pooled PostgreSQL connection with the parts of sqlite3.Connection Flaskr uses.

    It is in autocommit mode, as Flaskr's SQLite connections are: statements outside a
    transaction stand alone, and `transaction()` groups writes.
    """

    backend = "postgresql"
    Error = psycopg.Error
    IntegrityError = psycopg.IntegrityError
    OperationalError = psycopg.OperationalError

    def __init__(self, conn, pool=None):
        self.conn = conn
        self.pool = pool

    def execute(self, sql, params=()):
        cursor = self.conn.cursor()
        cursor.execute(translate(sql), tuple(params))
        return cursor

    def executemany(self, sql, rows):
        cursor = self.conn.cursor()
        cursor.executemany(translate(sql), [tuple(row) for row in rows])
        return cursor

    def executescript(self, sql):
        """Run several statements that take no parameters."""
        self.conn.execute(translate(sql, placeholders=False))

    def begin_write(self):
        """Begin a write transaction, waiting (up to lock_timeout) for the other writers."""
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))

    def commit(self):
        """Commit the open transaction, if any (as sqlite3's commit does)."""
        if self.in_transaction:
            self.conn.execute("COMMIT")

    @property
    def in_transaction(self):
        return self.conn.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self):
        """Give the connection back to its pool (or close it), rolling back what is open."""
        if self.pool is not None:
            self.pool.putconn(self.conn)
        else:
            self.conn.close()


def configure_connection(conn, busy_timeout_ms):
    """Settings every connection gets once: times in UTC, as SQLite's CURRENT_TIMESTAMP."""
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute(f"SET lock_timeout = {int(busy_timeout_ms)}")


class Pools:
    """One connection pool per process (a forked worker must not share its parent's)."""

    def __init__(self, url, size, busy_timeout_ms):
        self.url = url
        self.size = size
        self.busy_timeout_ms = busy_timeout_ms
        self.lock = threading.Lock()
        self.pool = None
        self.pid = None

    def get(self):
        with self.lock:
            if self.pool is None or self.pid != os.getpid():
                self.pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self.size,
                    timeout=self.busy_timeout_ms / 1000,
                    kwargs={"autocommit": True, "row_factory": make_row},
                    configure=lambda conn: configure_connection(conn, self.busy_timeout_ms),
                    name="flaskr",
                    open=True,
                )
                self.pid = os.getpid()
            return self.pool

    def connect(self):
        """Return a connection from this process's pool, wrapped."""
        pool = self.get()
        return Connection(pool.getconn(), pool)

    def close(self):
        with self.lock:
            if self.pool is not None and self.pid == os.getpid():
                self.pool.close()
            self.pool = None


def connect(url, busy_timeout_ms=5000, row_factory=make_row):
    """Open one connection outside the pool (commands, the page cache's watch)."""
    conn = psycopg.connect(url, autocommit=True, row_factory=row_factory)
    configure_connection(conn, busy_timeout_ms)
    return Connection(conn)


# The page cache's check, run before every cached page: prepared once per watch.
SITE_VERSION_STATEMENT = b"flaskr_site_version"


class WatchConnection(Connection):
    """A page cache's watch: plain tuple rows, and the site's version read through libpq.

    The version is read before every cached page, so that read skips the cursor: one
    prepared statement, one round trip, its one value parsed here.
    """

    def __init__(self, conn):
        super().__init__(conn)
        conn.execute(
            f"PREPARE {SITE_VERSION_STATEMENT.decode()} AS SELECT version FROM site_version"
        )

    def site_version(self):
        """Return the site's version (see migrations/postgresql/0009_schema.sql)."""
        result = self.conn.pgconn.exec_prepared(SITE_VERSION_STATEMENT, None)
        if result.status != pq.ExecStatus.TUPLES_OK:
            raise psycopg.errors.error_from_result(result, encoding=self.conn.info.encoding)
        return int(result.get_value(0, 0))


def connect_watch(url):
    """Open a page cache's watch, whose rows are plain tuples (they cost less to make)."""
    return WatchConnection(connect(url, row_factory=tuple_row).conn)


def fault_cause(error):
    """Return the condition a PostgreSQL error reports (disk full...), or None for a bug."""
    if isinstance(error, PoolTimeout):
        return "every database connection stayed busy past the busy timeout"
    state = error.sqlstate or ""
    if state in FAULT_STATES:
        return FAULT_STATES[state]
    if state[:2] in FAULT_CLASSES:
        return FAULT_CLASSES[state[:2]]
    if isinstance(error, psycopg.OperationalError) and not state:
        # No answer from the server at all: it is down, restarting or unreachable.
        return FAULT_CLASSES["08"]
    return None


def schema_version(db):
    """Return the schema version stored in the database (0 for an empty one)."""
    # Read from pg_tables, not the server's catalog cache (to_regclass): a table another
    # server's init-db has just committed shows here at once.
    (exists,) = db.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_tables"
        " WHERE schemaname = current_schema() AND tablename = 'schema_version')"
    ).fetchone()
    if not exists:
        return 0
    return db.execute("SELECT version FROM schema_version").fetchone()[0]


def set_schema_version(db, version):
    db.execute("UPDATE schema_version SET version = ?", (version,))


def apply_migration(db, sql):
    """Run a migration file (statements, functions and triggers) as it is written."""
    db.conn.execute(sql)


def table_names(db):
    """Return Flaskr's tables, in no particular order."""
    rows = db.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    ).fetchall()
    return [row[0] for row in rows]


def reset(db):
    """Drop every table, function and text search setting: an empty database."""
    db.execute("DROP SCHEMA public CASCADE")
    db.execute("CREATE SCHEMA public")


def write_problem(db, commit=False):
    """Return why the database cannot take a write now, or None.

    Takes the write lock (waiting as a write would) and rewrites the schema version in
    place; only with commit does the write reach the disk.
    """
    try:
        db.begin_write()
        try:
            set_schema_version(db, schema_version(db))
            if commit:
                db.execute("COMMIT")
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
    except psycopg.Error as e:
        cause = fault_cause(e)
        if cause is None:
            raise
        return cause
    return None


def backup(url, path):
    """Write the database to path with pg_dump, in its custom format (pg_restore reads it)."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise click.ClickException(
            "pg_dump is not installed: install PostgreSQL's client tools"
            " (Debian: apt-get install postgresql-client) and try again."
        )
    tmp = f"{path}.partial"
    result = subprocess.run(  # noqa: S603 (pg_dump from the PATH, no shell)
        [pg_dump, "--format=custom", "--no-owner", f"--file={tmp}", f"--dbname={url}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise click.ClickException(f"pg_dump failed: {result.stderr.strip()}")
    os.replace(tmp, path)
