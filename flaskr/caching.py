"""Caching: visitors' pages kept in memory until the data changes, HTTP cache headers.

Visitors' pages are revalidated (ETag), users' pages never stored, static files versioned.
"""

import functools
import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict

from flask import Response, current_app, g, make_response, request, session

# A versioned static URL names one exact content, so it can be kept for a year.
STATIC_MAX_AGE = 365 * 24 * 60 * 60


class PageCache:
    """Visitors' HTML pages by URL, dropped whenever anyone commits to the database.

    Each server thread keeps one idle read connection that only asks SQLite's
    data_version, which changes when any other connection, in this process or another,
    commits. A thread that sees it change starts a new generation and empties the cache;
    a page rendered during an older generation is not kept. Every hit is preceded by
    such a check, so a page is never served after a commit its content does not show.
    """

    def __init__(self, database, size):
        self.database = database
        self.size = size
        self.lock = threading.Lock()
        self.pages = OrderedDict()
        self.generation = 0
        self.local = threading.local()

    def current_generation(self):
        """Return the generation pages may be stored under; None when there is no database."""
        local = self.local
        if getattr(local, "watch", None) is None:
            if not os.path.exists(self.database):
                return None
            local.watch = sqlite3.connect(self.database, check_same_thread=True)
            local.seen = None
        try:
            (version,) = local.watch.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            # Unreadable: serve nothing from the cache; the page itself will say why.
            local.watch.close()
            local.watch = None
            return None
        if version != local.seen:
            local.seen = version
            with self.lock:
                self.generation += 1
                self.pages.clear()
        return self.generation

    def get(self, url):
        """Return the cached page for url, or None."""
        with self.lock:
            page = self.pages.get(url)
            if page is not None:
                self.pages.move_to_end(url)
            return page

    def put(self, url, generation, page):
        """Keep a page rendered during generation, unless the data changed since."""
        with self.lock:
            if generation != self.generation:
                return
            self.pages[url] = page
            self.pages.move_to_end(url)
            while len(self.pages) > self.size:
                self.pages.popitem(last=False)


def cached_page(view):
    """Serve a visitor's request for this page from the page cache; keep what it renders.

    Only visitors with an empty session (no login, no message waiting to be shown) share
    pages; anyone else gets the view itself. Only 200 responses are kept, with their
    headers, so a feed's ETag and Last-Modified still answer conditional requests.
    """

    @functools.wraps(view)
    def wrapped_view(**kwargs):
        cache = current_app.extensions.get("page_cache")
        if cache is None or session:
            return view(**kwargs)
        generation = cache.current_generation()
        if generation is None:
            return view(**kwargs)
        page = cache.get(request.url)
        if page is not None:
            data, headers = page
            return Response(data, headers=headers).make_conditional(request)
        response = make_response(view(**kwargs))
        if response.status_code == 200:
            page = (response.get_data(), response.headers.to_wsgi_list())
            cache.put(request.url, generation, page)
        return response

    return wrapped_view


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
    if app.config["PAGE_CACHE_SIZE"]:
        app.extensions["page_cache"] = PageCache(
            app.config["DATABASE"], app.config["PAGE_CACHE_SIZE"]
        )
    app.extensions["static_versions"] = static_versions(app.static_folder)
    app.url_defaults(add_static_version)
    app.after_request(set_cache_headers)
