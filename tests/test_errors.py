import logging
import re
import sqlite3

import pytest
from flask import abort
from listing import add_posts

from flaskr import errors
from flaskr.db import get_db


def assert_site_page(response, status, text):
    assert response.status_code == status
    assert response.content_type == "text/html; charset=utf-8"
    assert b'class="site-nav"' in response.data
    assert text in response.data


def test_404_page(client):
    assert_site_page(client.get("/no/such/page"), 404, b"404 Not Found")


def test_404_for_missing_post(client, auth):
    auth.login()
    assert_site_page(client.get("/7/update"), 404, b"Post id 7 doesn&#39;t exist.")


def test_403_page(client, auth):
    auth.login("other", "other")
    assert_site_page(client.post("/1/delete"), 403, b"Only the author can change this post.")


def test_405_page_keeps_allow_header(client):
    response = client.get("/1/delete")
    assert_site_page(response, 405, b"405 Method Not Allowed")
    assert "POST" in response.headers["Allow"]
    assert "GET" not in response.headers["Allow"]


def test_413_page(make_app):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = client.post("/auth/login", data={"username": "x" * 4096, "password": "y"})
    assert_site_page(response, 413, b"413 Request Entity Too Large")


def test_400_page(app, client):
    app.add_url_rule("/bad", "bad", lambda: abort(400))
    assert_site_page(client.get("/bad"), 400, b"400 Bad Request")


@pytest.mark.parametrize("logged_in", [False, True])
def test_500_page_shows_no_traceback(app, client, auth, logged_in):
    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/broken", "broken", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    if logged_in:
        auth.login()
    response = client.get("/broken")
    assert_site_page(response, 500, b"500 Internal Server Error")
    assert b"secret internals" not in response.data
    assert b"Traceback" not in response.data


def test_a_programming_error_in_sql_stays_a_500(app, client, caplog):
    def bad_sql():
        get_db().execute("SELEC 1")

    app.add_url_rule("/bad-sql", "bad_sql", bad_sql, methods=["POST"])
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with caplog.at_level(logging.INFO, logger="flaskr"):
        response = client.post("/bad-sql")
    assert_site_page(response, 500, b"500 Internal Server Error")
    assert "Retry-After" not in response.headers
    assert b"SELEC" not in response.data
    # A bug, unlike a fault, is logged with its traceback.
    (error,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert error.exc_info is not None
    assert "syntax error" in str(error.exc_info[1])


@pytest.mark.sqlite_only
def test_a_programming_error_in_sql_propagates_in_tests(app, client):
    app.add_url_rule("/bad-sql", "bad_sql", lambda: get_db().execute("SELECT * FROM nowhere"))
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        client.get("/bad-sql")


def newest_listed(response):
    """The titles and links of the newest posts an error page offers, in order."""
    newest = response.data.decode().partition('<ul class="newest">')[2].partition("</ul>")[0]
    return re.findall(r'<li><a href="(/[^"]*)">([^<]*)</a>', newest)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no/such/page", 404), ("GET", "/1/delete", 405), ("POST", "/1/delete", 403)],
)
def test_error_pages_offer_a_search_and_the_five_newest_posts(
    app, client, auth, method, path, status
):
    add_posts(app, 6)
    auth.login("other", "other")
    response = client.open(path, method=method)
    assert response.status_code == status
    assert b'<form class="form search-form" action="/search" method="get" role="search">' in (
        response.data
    )
    assert b'<label for="error-search-q">Search the posts instead</label>' in response.data
    newest = newest_listed(response)
    assert [title for _, title in newest] == [f"post {k}" for k in (6, 5, 4, 3, 2)]
    assert newest[0][0] == "/7/post-6"


def test_the_413_and_429_pages_offer_the_newest_posts_too(make_app, app):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = client.post("/auth/login", data={"username": "x" * 4096, "password": "y"})
    assert response.status_code == 413
    assert newest_listed(response)[0][1] == "test title"
    app.add_url_rule("/busy", "busy", lambda: abort(429))
    assert newest_listed(app.test_client().get("/busy"))[0][1] == "test title"


def test_an_error_page_needs_no_post_list(app, client, monkeypatch):
    def unreadable(limit):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(errors, "newest_posts", unreadable)
    response = client.get("/no/such/page")
    assert_site_page(response, 404, b"404 Not Found")
    assert b"Newest posts" not in response.data
    assert b"error-search-q" in response.data


def test_server_error_pages_read_nothing(app, client, monkeypatch):
    def must_not_read(limit):
        raise AssertionError("read on a server error page")

    monkeypatch.setattr(errors, "newest_posts", must_not_read)
    app.add_url_rule("/down", "down", lambda: abort(503))
    response = client.get("/down")
    assert_site_page(response, 503, b"503 Service Unavailable")
    assert b"error-search-q" not in response.data
