"""Moving a site between databases: the copy-db command (SQLite and PostgreSQL, either way)."""

import graphlib
import re
import time
from contextlib import contextmanager
from datetime import datetime

import click
from flask.cli import with_appcontext

from .db import (
    ERRORS,
    advance_sequences,
    backend,
    connect,
    get_db,
    is_postgresql,
    latest_version,
    migrate,
    postgres,
    schema_version,
    table_names,
    transaction,
)

# Rows read and written at a time: few round trips, bounded memory whatever the size.
BATCH = 1000
# A big table reports its progress every this many batches.
PROGRESS_EVERY = 20
# The schema's own bookkeeping, which migrations write on each database for itself.
BOOKKEEPING = ("schema_version", "site_version")
# How a count of a table's rows reads in a message ("3 users"); other tables by their name.
NOUNS = {"post_like": "like", "imported": "import record", "one_time_link": "one-time link"}


def first_line(error):
    """Return the first line of an error's message (a driver's may run to several)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def hide_password(url):
    """Return a database URL fit to print: its password, if any, replaced by ***."""
    url = re.sub(r"^(\w+://[^:/@?]*):[^@/?]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


def amount(count, table):
    """Return a count of rows as a person reads it: '1 user', '12 posts', '2 post tags'."""
    noun = NOUNS.get(table, table.replace("_", " "))
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def listing(parts):
    """Join phrases as a sentence does: 'a', 'a and b', 'a, b and c'."""
    if len(parts) < 2:
        return "".join(parts) or "no rows"
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def open_target(url):
    """Open the database at url: a postgresql:// URL, or else a SQLite file path."""
    if "://" in url and not is_postgresql(url):
        raise click.ClickException(
            f"copy-db copies to a file path (SQLite) or a postgresql:// URL,"
            f" not a {url.partition(':')[0]}: URL."
        )
    if is_postgresql(url):
        return postgres.connect(url)
    return connect(url)


# What each backend says about its own tables: their columns and their foreign keys.
def column_names(db, table):
    """Return the columns of a table that take values (PostgreSQL's generated ones left out)."""
    if backend(db) == "postgresql":
        sql = (
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
            " AND table_schema = current_schema() AND is_generated = 'NEVER'"
            " ORDER BY ordinal_position"
        )
    else:
        sql = "SELECT name FROM pragma_table_info(?)"
    return [row[0] for row in db.execute(sql, (table,))]


def parent_tables(db):
    """Return the pairs (table, a table it references) of the database's foreign keys."""
    if backend(db) == "postgresql":
        sql = (
            "SELECT child.relname, parent.relname FROM pg_constraint"
            " JOIN pg_class child ON child.oid = conrelid"
            " JOIN pg_class parent ON parent.oid = confrelid"
            " WHERE contype = 'f' AND child.relnamespace = current_schema()::regnamespace"
        )
    else:
        sql = (
            'SELECT m.name, f."table" FROM sqlite_master m, pragma_foreign_key_list(m.name) f'
            " WHERE m.type = 'table'"
        )
    return [tuple(row) for row in db.execute(sql)]


def site_tables(db):
    """Return the tables a site's rows live in, parents before the tables referencing them."""
    tables = [name for name in table_names(db) if name not in BOOKKEEPING]
    graph = {table: set() for table in sorted(tables)}
    for child, parent in parent_tables(db):
        graph.setdefault(child, set()).add(parent)
    return [table for table in graphlib.TopologicalSorter(graph).static_order() if table in tables]


def row_counts(db, tables):
    """Return {table: rows} for the given tables."""
    return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}


def check_empty(db):
    """Refuse a target holding any row of a site (bookkeeping aside), with what it holds."""
    counts = row_counts(db, [t for t in table_names(db) if t not in BOOKKEEPING])
    held = [amount(n, table) for table, n in counts.items() if n]
    if held:
        raise click.ClickException(
            f"The target already holds {listing(held)}; copy-db only fills an empty database."
        )


def read_batches(db, table, columns):
    """Yield a table's rows, in batches, from a read transaction of db.

    PostgreSQL keeps the rows on the server (a named cursor) until they are asked for, as
    SQLite's cursor does, so that a big table never sits whole in memory.
    """
    names = ", ".join(f'"{column}"' for column in columns)
    sql = f'SELECT {names} FROM "{table}"'
    if backend(db) == "postgresql":
        cursor = db.conn.cursor(name="copy_db")
        cursor.execute(sql)
    else:
        cursor = db.execute(sql)
    try:
        while rows := cursor.fetchmany(BATCH):
            yield rows
    finally:
        cursor.close()


@contextmanager
def table_writer(db, table, columns):
    """Give a function that inserts rows into a table of the target, keeping every value.

    PostgreSQL takes a whole table by one COPY: its statement triggers (the page cache's
    version) run once, not once per row. SQLite stores times as text.
    """
    names = ", ".join(f'"{column}"' for column in columns)
    if backend(db) == "postgresql":
        with (
            db.conn.cursor() as cursor,
            cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy,
        ):
            yield lambda rows: [copy.write_row(row) for row in rows]
        return
    sql = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" for _ in columns)})'

    def write(rows):
        db.executemany(
            sql,
            [[v.isoformat(" ") if isinstance(v, datetime) else v for v in row] for row in rows],
        )

    yield write


def copy_tables(source, target, shown):
    """Copy every table of source into target inside one transaction; return {table: rows}."""
    tables = site_tables(target)
    expected = row_counts(source, tables)
    with transaction(target):
        check_empty(target)
        for table in tables:
            theirs = set(column_names(source, table))
            columns = [c for c in column_names(target, table) if c in theirs]
            copied = 0
            with table_writer(target, table, columns) as write:
                for n, rows in enumerate(read_batches(source, table, columns), start=1):
                    write(rows)
                    copied += len(rows)
                    if n % PROGRESS_EVERY == 0 and copied < expected[table]:
                        click.echo(f"  {table}: {copied:,} of {expected[table]:,}", err=True)
            click.echo(f"  {table}: {copied:,}", err=True)
        counts = row_counts(target, tables)
        for table in tables:
            if counts[table] != expected[table]:
                raise click.ClickException(
                    f"The copy of {table} holds {counts[table]:,} rows, not {expected[table]:,}:"
                    f" nothing was copied to {shown}."
                )
        advance_sequences(target)
    return counts


def copy_db(url):
    """Copy the configured database into the empty database at url; return {table: rows}."""
    shown = hide_password(url)
    source = get_db()
    if schema_version(source) != latest_version(backend(source)):
        raise click.ClickException(
            "The database is not at this Flaskr's schema: run 'flask --app flaskr init-db' first."
        )
    try:
        target = open_target(url)
    except ERRORS as e:
        raise click.ClickException(f"Cannot open {shown}: {first_line(e)}") from e
    try:
        version, latest = schema_version(target), latest_version(backend(target))
        if version > latest:
            raise click.ClickException(
                f"{shown} is at schema version {version}, newer than this Flaskr ({latest})."
            )
        # Before any migration: a target with content is left exactly as it was.
        check_empty(target)
        migrate(target)
        # One moment of the source, however long the copy takes and whoever writes.
        source.execute("BEGIN")
        try:
            return copy_tables(source, target, shown)
        finally:
            source.execute("ROLLBACK")
    except ERRORS as e:
        raise click.ClickException(
            f"Copying to {shown} failed, nothing was copied: {first_line(e)}"
        ) from e
    finally:
        target.close()


@click.command("copy-db")
@click.argument("url")
@with_appcontext
def copy_db_command(url):
    """Copy the whole site into the empty database at URL (a file path or a postgresql:// URL)."""
    started = time.monotonic()
    counts = copy_db(url)
    copied = listing([amount(n, table) for table, n in counts.items() if n])
    seconds = time.monotonic() - started
    click.echo(f"Copied {copied} to {hide_password(url)} in {seconds:.1f} s.")


def init_app(app):
    """Register the copy-db command."""
    app.cli.add_command(copy_db_command)
