"""Caching: visitors' pages and shared parts of pages kept in memory until the data changes.

Visitors' pages are revalidated (ETag), users' pages never stored, static files versioned.
What every reader sees alike (a post's card, a page of posts, the site's settings) is kept
under the same rule as visitors' pages, so that logged-in readers share it too.
"""

import ctypes
import functools
import hashlib
import os
import sqlite3
import threading
import weakref
from collections import OrderedDict

from flask import (
    Response,
    current_app,
    g,
    has_request_context,
    make_response,
    request,
    session,
    url_for,
)

from .db import ERRORS, backend, is_postgresql, postgres, repair_journal_modes, utc_time

# A versioned static URL names one exact content, so it can be kept for a year.
STATIC_MAX_AGE = 365 * 24 * 60 * 60
# What each header of a cached page costs beyond its text: the tuple and two strings.
PER_HEADER_BYTES = 150
# What each cached page costs beyond its key, body and headers: its entry and containers.
PER_PAGE_BYTES = 500
# What each value of a shared entry costs beyond its text: the object and its container slot.
PER_VALUE_BYTES = 60
# Where this request's generation is kept: the request's own environ, never g, which a
# test's app context can carry from one request to the next.
GENERATION_KEY = "flaskr.page_cache_generation"
# The time the next scheduled post is published, when pages made now go out of date
# without any write (it walks the partial index post_published).
NEXT_PUBLICATION_QUERY = (
    "SELECT MIN(created) FROM post WHERE draft = 0 AND created > CURRENT_TIMESTAMP"
)
# A SQLite database in WAL mode has a wal-index beside it (the -shm file) that SQLite maps
# into the memory of every process using the database. It begins with two copies of a
# 48-byte header that every commit rewrites, the second copy first; readers take their
# snapshot of the database from it (sqlite.org/walformat.html, "The WAL-Index Header").
WAL_INDEX_HEADER_BYTES = 48
# Where Linux lists the files mapped into this process's memory, and at which addresses.
PROCESS_MAPS = "/proc/self/maps"


class Watch:
    """One thread's watch: its connection (None until opened) and the version it saw last.

    On SQLite in WAL mode it also knows where SQLite has mapped the wal-index header into
    this process (see WAL_INDEX_HEADER_BYTES) and keeps the header it saw with that
    version: while the header is unchanged, nobody has committed, and the version need
    not be read. The mapping is SQLite's own, alive while the watch's connection is open.
    """

    __slots__ = ("lock", "connection", "seen", "wal_header", "seen_header", "__weakref__")

    def __init__(self):
        self.lock = threading.Lock()
        self.connection = None
        self.seen = None
        self.wal_header = None
        self.seen_header = None

    def __del__(self):
        # The thread that owned it has ended: its connection goes with it.
        self.close()

    def close(self):
        """Close the connection and forget the header's address (it may go with it)."""
        self.wal_header = None
        self.seen_header = None
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def header(self):
        """Return the wal-index header as it is now, or None (not found, or being rewritten).

        The two copies differ only while a commit rewrites them: then the version is read.
        """
        if self.wal_header is None:
            return None
        both = ctypes.string_at(self.wal_header, 2 * WAL_INDEX_HEADER_BYTES)
        first = both[:WAL_INDEX_HEADER_BYTES]
        return first if first == both[WAL_INDEX_HEADER_BYTES:] else None

    def unchanged(self):
        """Whether nobody has committed since the version was last read (False when unknown)."""
        return self.seen_header is not None and self.header() == self.seen_header


class PageCache:
    """Visitors' pages, kept within a byte budget, dropped whenever anyone commits.

    Idle read connections (watches, one per thread) only ask the database's version (see
    data_version), which changes when any other connection, in this process, another
    process or on another server, commits. A request that sees it change starts a new
    generation and empties the cache; a page rendered during an older generation is not
    kept. Every hit is preceded by such a check, so a page is never served after a commit
    its content does not show. On SQLite in WAL mode the check is a read of shared memory
    (see Watch) until someone commits; the version is read only then. Each generation
    also reads when the next scheduled post is published, and ends then: no page is
    served past the moment a post appears.

    Pages are kept while their bytes (body and headers) fit the budget, the least
    recently used going first; a page larger than a sixteenth of it is never kept, so
    that one huge page cannot push out all the others. Shared parts of pages (see
    shared()) are kept in the same way, in a quarter of the budget more, and go with
    the pages when a generation ends.
    """

    def __init__(self, database, budget):
        self.database = database
        self.budget = budget
        self.largest = budget // 16
        self.lock = threading.Lock()
        self.pages = OrderedDict()
        self.size = 0
        self.generation = 0
        # Each thread checks through its own watch, so that no check waits for another
        # thread's; each watch has a lock, so that one thread can close them all (see
        # close_watch). watch_lock guards the set of them.
        self.local = threading.local()
        self.watch_lock = threading.Lock()
        self.watches = weakref.WeakSet()
        # When the next scheduled post is published ('YYYY-MM-DD HH:MM:SS', UTC), or None.
        self.next_publication = None
        # Shared parts of pages (see shared()): {key: (value, size)} of shared_generation.
        self.shared = OrderedDict()
        self.shared_size = 0
        self.shared_generation = None

    @property
    def watch(self):
        """This thread's open watch connection, or None."""
        watch = getattr(self.local, "watch", None)
        return None if watch is None else watch.connection

    def own_watch(self):
        """Return this thread's Watch, made on its first check."""
        watch = getattr(self.local, "watch", None)
        if watch is None:
            watch = self.local.watch = Watch()
            with self.watch_lock:
                self.watches.add(watch)
        return watch

    def current_generation(self):
        """Return the generation pages may be stored under; None when it cannot be watched now."""
        watch = self.own_watch()
        with watch.lock:
            if watch.unchanged() and not self.publication_due():
                return self.generation
            try:
                if watch.connection is None:
                    watch.connection = open_watch(self.database)
                    if watch.connection is None:
                        return None
                    watch.seen = None
                # Read before the version: a commit in between shows at the next check.
                header = watch.header()
                version = data_version(watch.connection)
                if version != watch.seen or self.publication_due():
                    # Read before the cache is emptied: a post published in between
                    # ends this generation too.
                    (upcoming,) = watch.connection.execute(NEXT_PUBLICATION_QUERY).fetchone()
                    self.next_publication = stored_time(upcoming)
                    if watch.wal_header is None:
                        watch.wal_header = find_wal_header(self.database, watch.connection)
                    # Every thread's watch sees every commit, and its thread empties the
                    # cache at its first check after it: no thread serves a page from
                    # before a commit it has seen (another thread may empty it again).
                    watch.seen = version
                    with self.lock:
                        self.generation += 1
                        self.pages.clear()
                        self.size = 0
                watch.seen_header = header
            except ERRORS:
                # Unreadable: serve nothing from the cache; the page itself will say why.
                watch.close()
                return None
            return self.generation

    def publication_due(self):
        """Whether the next scheduled post has been published since the generation began."""
        return self.next_publication is not None and self.next_publication <= now()

    def close_watch(self):
        """Close every thread's watch, so that the next page of each opens a new one.

        SQLite shares some of a database's state between the connections of a process:
        a watch opened during a fault (a read-only file gives it a read-only index of the
        write-ahead log) would keep every writer failing after the fault is gone.
        """
        with self.watch_lock:
            watches = list(self.watches)
        for watch in watches:
            with watch.lock:
                watch.close()

    def get(self, key):
        """Return the cached page for key, or None."""
        with self.lock:
            page = self.pages.get(key)
            if page is not None:
                self.pages.move_to_end(key)
            return page

    def put(self, key, generation, page):
        """Keep a page rendered in generation, unless the data changed since or it is too large."""
        size = entry_size(key, page)
        if size > self.largest:
            return
        with self.lock:
            if generation != self.generation:
                return
            if key in self.pages:
                self.size -= entry_size(key, self.pages.pop(key))
            self.pages[key] = page
            self.size += size
            while self.size > self.budget:
                evicted = self.pages.popitem(last=False)
                self.size -= entry_size(*evicted)

    def get_shared(self, key):
        """Return the shared value kept for key in the current generation, as (value,), or None."""
        with self.lock:
            self._forget_older_shared()
            entry = self.shared.get(key)
            if entry is not None:
                self.shared.move_to_end(key)
                return entry[:1]
            return None

    def put_shared(self, key, generation, value, size):
        """Keep a shared value made in generation, unless the data changed since or it is too large.

        size is roughly the bytes it takes; the shared values have a quarter of the
        pages' budget, on top of it.
        """
        if self.largest < size:
            return
        with self.lock:
            if generation != self.generation:
                return
            self._forget_older_shared()
            if key in self.shared:
                self.shared_size -= self.shared.pop(key)[1]
            self.shared[key] = (value, size)
            self.shared_size += size
            while self.shared_size > self.budget // 4:
                _key, (_value, evicted) = self.shared.popitem(last=False)
                self.shared_size -= evicted

    def _forget_older_shared(self):
        """Empty the shared values when a new generation began since they were kept (locked)."""
        if self.shared_generation != self.generation:
            self.shared.clear()
            self.shared_size = 0
            self.shared_generation = self.generation


def now():
    """Return the current time as posts' times are stored (a seam for tests)."""
    return utc_time()


def data_version(connection):
    """Return what changes whenever anyone commits, read through a watch's connection.

    SQLite's own counter for the file; on PostgreSQL the site's version, which triggers
    bump in every transaction that changes what a visitor's page shows (see
    migrations/postgresql/0009_schema.sql).
    """
    if backend(connection) == "postgresql":
        return connection.site_version()
    (version,) = connection.execute("PRAGMA data_version").fetchone()
    return version


def stored_time(moment):
    """Return a time read from either backend as 'YYYY-MM-DD HH:MM:SS' (None stays None).

    SQLite hands a computed time (MIN of a column) over as that text, PostgreSQL as a datetime.
    """
    if moment is None or isinstance(moment, str):
        return moment
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def open_watch(database):
    """Open the page cache's connection to the database, for any thread (under its lock).

    None when a SQLite file cannot be watched now: missing, or read-only (a watch opened
    then would get a read-only index of the write-ahead log, which SQLite shares with
    every connection of this process, and keep them all read-only after the file is
    writable again).
    """
    if is_postgresql(database):
        return postgres.connect_watch(database)
    if not os.path.exists(database):
        return None
    repair_journal_modes(database)
    if not os.access(database, os.W_OK):
        return None
    return sqlite3.connect(database, check_same_thread=False)


def find_wal_header(database, connection):
    """Return where SQLite has mapped the wal-index header of database in this process, or None.

    connection (a watch) has read the database: in WAL mode SQLite has mapped the wal-index
    and keeps it mapped while the connection is open; neither can the database leave WAL
    mode while it is (that needs every other connection closed). Found by its file name
    among this process's mappings; None off Linux, outside WAL mode, or when not exactly
    one mapping is found. The file is never opened here: closing any descriptor of it
    would drop the locks SQLite holds on it for this whole process.
    """
    if backend(connection) != "sqlite":
        return None
    (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    if mode != "wal":
        return None
    path = os.path.realpath(f"{database}-shm")
    try:
        with open(PROCESS_MAPS, encoding="utf-8", errors="replace") as maps:
            # "start-end perms offset device inode path"; the header is at offset 0.
            found = [
                int(fields[0].partition("-")[0], 16)
                for fields in (line.rstrip("\n").split(maxsplit=5) for line in maps)
                if len(fields) == 6 and fields[5] == path and int(fields[2], 16) == 0
            ]
    except OSError:
        return None
    return found[0] if len(found) == 1 else None


def entry_size(key, page):
    """Return roughly the bytes a cached page takes: its key, body and headers, with overheads."""
    data, headers = page
    key_bytes = sum(len(part) for part in key if part is not None)
    header_bytes = sum(len(name) + len(value) + PER_HEADER_BYTES for name, value in headers)
    return PER_PAGE_BYTES + key_bytes + len(data) + header_bytes


def value_size(value):
    """Return roughly the bytes a shared value takes: its texts, with overheads.

    Knows the values shared() keeps: texts, numbers, times, rows, lists, tuples, dicts
    and objects of those (such as a pagination.Page).
    """
    if isinstance(value, str | bytes):
        return PER_VALUE_BYTES + len(value)
    if isinstance(value, dict):
        return PER_VALUE_BYTES + sum(value_size(k) + value_size(v) for k, v in value.items())
    if isinstance(value, list | tuple | sqlite3.Row):
        return PER_VALUE_BYTES + sum(value_size(item) for item in value)
    if hasattr(value, "__dict__"):
        return value_size(vars(value))
    return PER_VALUE_BYTES


def request_generation():
    """Return the page cache's generation for this request, or None when nothing may be kept.

    Checked once per request, at its first use: everything a request shares or reuses
    belongs to the data as it was then, or later.
    """
    cache = current_app.extensions.get("page_cache")
    if cache is None or not has_request_context():
        return None
    environ = request.environ
    if GENERATION_KEY not in environ:
        environ[GENERATION_KEY] = cache.current_generation()
    return environ[GENERATION_KEY]


def shared(key, make):
    """Return make(), kept for every reader until the data changes.

    key (a tuple) must name everything the value depends on besides the data in the
    database; the value is kept while no commit happens (the page cache's generation),
    so it is what make() would return now. Nothing is kept when the page cache is off,
    outside a request, or while the database cannot be watched; a make() that raises
    keeps nothing. Values must never be changed by their users.
    """
    generation = request_generation()
    if generation is None:
        return make()
    cache = current_app.extensions["page_cache"]
    entry = cache.get_shared(key)
    if entry is not None:
        return entry[0]
    value = make()
    cache.put_shared(key, generation, value, value_size(key) + value_size(value))
    return value


# What remember() keeps per application, in bytes: parts of pages that depend only on
# their key (a post card by everything it shows, a path by its endpoint and arguments).
REMEMBERED_BYTES = 8 * 1024 * 1024


class Remembered:
    """Values made from their key alone, kept within a byte budget, least recently used first.

    Unlike the page cache's, these never go out of date: a commit cannot change them.
    """

    def __init__(self, budget):
        self.budget = budget
        self.lock = threading.Lock()
        self.values = OrderedDict()
        self.size = 0

    def get(self, key):
        """Return (value,) for key, or None."""
        with self.lock:
            entry = self.values.get(key)
            if entry is None:
                return None
            self.values.move_to_end(key)
            return entry[:1]

    def put(self, key, value, size):
        """Keep a value of roughly size bytes, unless it would take a sixteenth of the budget."""
        if size > self.budget // 16:
            return
        with self.lock:
            if key in self.values:
                self.size -= self.values.pop(key)[1]
            self.values[key] = (value, size)
            self.size += size
            while self.size > self.budget:
                _key, (_value, evicted) = self.values.popitem(last=False)
                self.size -= evicted


def remember(key, make):
    """Return make(), kept for later calls with the same key in this application.

    key (a tuple) must name everything the value depends on: it is kept whatever the
    database says, until it is the least recently used when room is needed.
    """
    remembered = current_app.extensions["remembered"]
    entry = remembered.get(key)
    if entry is not None:
        return entry[0]
    value = make()
    remembered.put(key, value, value_size(key) + value_size(value))
    return value


def cached_url_for(endpoint, **values):
    """url_for for templates: each path made once per application, script root and arguments.

    A path depends on nothing else; an absolute URL (on the request's host) and a name
    relative to the request's blueprint are made afresh each time, as is any URL
    outside a request or with arguments that cannot be a key.
    """
    if values.get("_external") or endpoint.startswith(".") or not has_request_context():
        return url_for(endpoint, **values)
    key = ("path", request.script_root, endpoint, *sorted(values.items()))
    try:
        hash(key)
    except TypeError:
        return url_for(endpoint, **values)
    return remember(key, lambda: url_for(endpoint, **values))


def close_watch_after_fault():
    """After a database fault, make the page cache open a new watch (see PageCache.close_watch)."""
    cache = current_app.extensions.get("page_cache")
    if cache is not None:
        cache.close_watch()


def cached_page(args=()):
    """Serve a visitor's request for this page from the page cache; keep what it renders.

    args names the query arguments the view reads: pages are kept by URL path and the
    first value of each of those, so any other argument is ignored (a flood of made-up
    ones creates no entries). Only visitors with an empty session (no login, no message
    waiting to be shown) share pages; anyone else gets the view itself. Only 200
    responses are kept, with their headers, so a feed's ETag and Last-Modified still
    answer conditional requests.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapped_view(**kwargs):
            cache = current_app.extensions.get("page_cache")
            if cache is None or session:
                return view(**kwargs)
            generation = request_generation()
            if generation is None:
                return view(**kwargs)
            # The host is part of the key: feeds carry absolute links.
            key = (request.base_url, *(request.args.get(name) for name in args))
            page = cache.get(key)
            if page is not None:
                data, headers = page
                return Response(data, headers=headers).make_conditional(request)
            response = make_response(view(**kwargs))
            if response.status_code == 200:
                # Kept with its ETag, so that no hit hashes the page again.
                if needs_revalidation(response):
                    revalidate(response)
                page = (response.get_data(), response.headers.to_wsgi_list())
                cache.put(key, generation, page)
                response.make_conditional(request)
            return response

        return wrapped_view

    return decorator


def static_versions(folder):
    """Return {filename: short content hash} for every file under the static folder."""
    versions = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()[:12]
            versions[os.path.relpath(path, folder).replace(os.sep, "/")] = digest
    return versions


def add_static_version(endpoint, values):
    """Give url_for('static', filename=...) a ?v= of the file's content hash."""
    if endpoint == "static":
        version = current_app.extensions["static_versions"].get(values.get("filename"))
        if version is not None:
            values.setdefault("v", version)


def set_cache_headers(response):
    """Choose how browsers and shared caches may keep this response.

    Responses that already say how to cache themselves (a Cache-Control or an ETag of
    their own, as files and feeds do) and streamed ones are left as they are.
    """
    if request.endpoint == "static":
        return cache_static_file(response)
    if (
        "Cache-Control" in response.headers
        or "ETag" in response.headers
        or response.is_streamed
        or response.direct_passthrough
    ):
        return response
    if g.get("user") is not None:
        # Pages for a logged-in user carry their name and links: never keep them. (The
        # header as werkzeug's cache_control would write it; it has none yet, see above.)
        response.headers["Cache-Control"] = "private, no-store"
    elif request.method in ("GET", "HEAD") and needs_revalidation(response):
        revalidate(response)
        response.make_conditional(request)
    return response


def needs_revalidation(response):
    """Whether a visitor's response is a page that browsers keep but ask about every time."""
    return response.status_code == 200 and response.mimetype == "text/html"


def revalidate(response):
    """Let browsers keep a visitor's page, asking every time (an unchanged page gets 304).

    Visitors' pages change whenever a post does.
    """
    response.cache_control.no_cache = True
    response.add_etag()


def cache_static_file(response):
    """Let browsers keep a static file for a year when its URL names its current version."""
    filename = (request.view_args or {}).get("filename")
    version = current_app.extensions["static_versions"].get(filename)
    if version is not None and request.args.get("v") == version:
        response.cache_control.no_cache = None
        response.cache_control.public = True
        response.cache_control.max_age = STATIC_MAX_AGE
        response.cache_control.immutable = True
        response.expires = None
    return response


def init_app(app):
    """Cache visitors' pages, version static URLs, remember pages' parts, set cache headers."""
    if app.config["PAGE_CACHE_BYTES"]:
        app.extensions["page_cache"] = PageCache(
            app.config["DATABASE"], app.config["PAGE_CACHE_BYTES"]
        )
    app.extensions["static_versions"] = static_versions(app.static_folder)
    app.url_defaults(add_static_version)
    app.extensions["remembered"] = Remembered(REMEMBERED_BYTES)
    app.jinja_env.globals["url_for"] = cached_url_for
    app.after_request(set_cache_headers)
