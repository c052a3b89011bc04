import pytest
from flask import abort


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
