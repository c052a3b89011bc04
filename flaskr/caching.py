"""HTTP caching: revalidated visitors' pages, never-stored users' pages, versioned static files."""

import hashlib
import os

from flask import current_app, g, request

# A versioned static URL names one exact content, so it can be kept for a year.
STATIC_MAX_AGE = 365 * 24 * 60 * 60


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
    """Version static URLs and set cache headers on every response."""
    app.extensions["static_versions"] = static_versions(app.static_folder)
    app.url_defaults(add_static_version)
    app.after_request(set_cache_headers)
