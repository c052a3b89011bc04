"""Caching: visitors' pages kept in memory until the data changes, HTTP cache headers.

Visitors' pages are revalidated (ETag), users' pages never stored, static files versioned.
"""

import functools
import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from datetime import UTC, datetime

from flask import Response, current_app, g, make_response, request, session

from .db import ERRORS, backend, is_postgresql, postgres, repair_journal_modes

# A versioned static URL names one exact content, so it can be kept for a year.
STATIC_MAX_AGE = 365 * 24 * 60 * 60
# What each header of a cached page costs beyond its text: the tuple and two strings.
PER_HEADER_BYTES = 150
# What each cached page costs beyond its key, body and headers: its entry and containers.
PER_PAGE_BYTES = 500
# The time the next scheduled post is published, when pages made now go out of date
# without any write (it walks the partial index post_published).
# What changes whenever anyone commits a change: SQLite's own counter for the file, and on
# PostgreSQL the site's version, which triggers bump in every transaction that changes
# what a visitor's page shows (see migrations/postgresql/0009_schema.sql).
VERSION_QUERIES = {
    "sqlite": "PRAGMA data_version",
    "postgresql": "SELECT version FROM site_version",
}
NEXT_PUBLICATION_QUERY = (
    "SELECT MIN(created) FROM post WHERE draft = 0 AND created > CURRENT_TIMESTAMP"
)


class PageCache:
    """Visitors' pages, kept within a byte budget, dropped whenever anyone commits.

    One idle read connection (the watch) only asks the database's version (see
    VERSION_QUERIES), which changes when any other connection, in this process, another
    process or on another server, commits. A request that sees
    it change starts a new generation and empties the cache; a page rendered during an
    older generation is not kept. Every hit is preceded by such a check, so a page is
    never served after a commit its content does not show. Each generation also reads
    when the next scheduled post is published, and ends then: no page is served past
    the moment a post appears.

    Pages are kept while their bytes (body and headers) fit the budget, the least
    recently used going first; a page larger than a sixteenth of it is never kept, so
    that one huge page cannot push out all the others.
    """

    def __init__(self, database, budget):
        self.database = database
        self.budget = budget
        self.largest = budget // 16
        self.lock = threading.Lock()
        self.pages = OrderedDict()
        self.size = 0
        self.generation = 0
        # The watch is shared by every thread, under its own lock, so that one thread can
        # close it for all (see close_watch).
        self.watch_lock = threading.Lock()
        self.watch = None
        self.seen = None
        # When the next scheduled post is published ('YYYY-MM-DD HH:MM:SS', UTC), or None.
        self.next_publication = None

    def current_generation(self):
        """Return the generation pages may be stored under; None when it cannot be watched now."""
        with self.watch_lock:
            try:
                if self.watch is None:
                    self.watch = open_watch(self.database)
                    if self.watch is None:
                        return None
                    self.seen = None
                (version,) = self.watch.execute(VERSION_QUERIES[backend(self.watch)]).fetchone()
                published = self.next_publication is not None and self.next_publication <= now()
                if version != self.seen or published:
                    # Read before the cache is emptied: a post published in between
                    # ends this generation too.
                    (upcoming,) = self.watch.execute(NEXT_PUBLICATION_QUERY).fetchone()
                    self.next_publication = stored_time(upcoming)
                    # Under the watch's lock: no other thread may see this version and
                    # serve a page from before the change while the cache is being emptied.
                    self.seen = version
                    with self.lock:
                        self.generation += 1
                        self.pages.clear()
                        self.size = 0
            except ERRORS:
                # Unreadable: serve nothing from the cache; the page itself will say why.
                if self.watch is not None:
                    self.watch.close()
                    self.watch = None
                return None
            return self.generation

    def close_watch(self):
        """Close the watch, so that the next page opens a new one.

        SQLite shares some of a database's state between the connections of a process:
        a watch opened during a fault (a read-only file gives it a read-only index of the
        write-ahead log) would keep every writer failing after the fault is gone.
        """
        with self.watch_lock:
            if self.watch is not None:
                self.watch.close()
                self.watch = None

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


def now():
    """Return the current time as posts' times are stored: 'YYYY-MM-DD HH:MM:SS', UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


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
        return postgres.connect(database)
    if not os.path.exists(database):
        return None
    repair_journal_modes(database)
    if not os.access(database, os.W_OK):
        return None
    return sqlite3.connect(database, check_same_thread=False)


def entry_size(key, page):
    """Return roughly the bytes a cached page takes: its key, body and headers, with overheads."""
    data, headers = page
    key_bytes = sum(len(part) for part in key if part is not None)
    header_bytes = sum(len(name) + len(value) + PER_HEADER_BYTES for name, value in headers)
    return PER_PAGE_BYTES + key_bytes + len(data) + header_bytes


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
            generation = cache.current_generation()
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
                page = (response.get_data(), response.headers.to_wsgi_list())
                cache.put(key, generation, page)
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
        # Pages for a logged-in user carry their name and links: never keep them.
        response.cache_control.private = True
        response.cache_control.no_store = True
    elif (
        request.method in ("GET", "HEAD")
        and response.status_code == 200
        and response.mimetype == "text/html"
    ):
        # Visitors' pages change whenever a post does: keep them, but ask every time,
        # and answer an unchanged page with 304 and no body.
        response.cache_control.no_cache = True
        response.add_etag()
        response.make_conditional(request)
    return response


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
    """Cache visitors' pages, version static URLs and set cache headers on every response."""
    if app.config["PAGE_CACHE_BYTES"]:
        app.extensions["page_cache"] = PageCache(
            app.config["DATABASE"], app.config["PAGE_CACHE_BYTES"]
        )
    app.extensions["static_versions"] = static_versions(app.static_folder)
    app.url_defaults(add_static_version)
    app.after_request(set_cache_headers)
