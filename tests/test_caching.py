import re

from flask import Response, url_for

from flaskr.caching import STATIC_MAX_AGE


def test_anonymous_page_revalidates_with_etag(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    etag = response.headers["ETag"]

    again = client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag


def test_changed_page_gets_a_new_etag(app, client, auth):
    etag = client.get("/").headers["ETag"]
    auth.login()
    client.post("/create", data={"title": "fresh news", "body": ""})
    auth.logout()
    response = client.get("/", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert b"fresh news" in response.data
    assert response.headers["ETag"] != etag


def test_head_is_conditional_too(client):
    etag = client.get("/").headers["ETag"]
    response = client.head("/")
    assert response.status_code == 200
    assert response.headers["ETag"] == etag
    assert client.head("/", headers={"If-None-Match": etag}).status_code == 304


def test_logged_in_pages_are_never_stored(client, auth):
    etag = client.get("/").headers["ETag"]
    auth.login()
    response = client.get("/", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert b"Log Out" in response.data
    assert "ETag" not in response.headers
    assert response.cache_control.private
    assert response.cache_control.no_store
    assert "public" not in response.headers["Cache-Control"]


def test_only_successful_html_pages_get_an_etag(client):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "ETag" not in missing.headers
    assert "ETag" not in client.get("/healthz").headers
    assert "ETag" not in client.post("/auth/login", data={}).headers


def test_responses_with_their_own_caching_are_left_alone(app, client):
    @app.route("/own-etag")
    def own_etag():
        response = Response("feed", mimetype="text/html")
        response.set_etag("feed-1")
        return response

    @app.route("/streamed")
    def streamed():
        return Response(iter(["a", "b"]), mimetype="text/html")

    response = client.get("/own-etag")
    assert response.headers["ETag"] == '"feed-1"'
    assert "Cache-Control" not in response.headers

    response = client.get("/streamed")
    assert response.data == b"ab"
    assert "ETag" not in response.headers


def test_static_urls_carry_their_content_version(app, client):
    page = client.get("/").get_data(as_text=True)
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    assert {url.split("?")[0] for url in urls} == {"/static/style.css", "/static/app.js"}
    versions = app.extensions["static_versions"]
    for url in urls:
        name = url.split("?")[0].removeprefix("/static/")
        assert url.endswith(f"?v={versions[name]}")
    with app.test_request_context():
        assert url_for("static", filename="missing.css") == "/static/missing.css"


def test_versioned_static_files_are_immutable(app, client):
    version = app.extensions["static_versions"]["style.css"]
    response = client.get(f"/static/style.css?v={version}")
    assert response.status_code == 200
    assert response.cache_control.public
    assert response.cache_control.max_age == STATIC_MAX_AGE
    assert response.cache_control.immutable
    assert not response.cache_control.no_cache
    response.close()


def test_unversioned_static_files_revalidate(client):
    for url in ("/static/style.css", "/static/style.css?v=stale"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.cache_control.no_cache
        assert not response.cache_control.immutable
        etag = response.headers["ETag"]
        response.close()
        with client.get(url, headers={"If-None-Match": etag}) as again:
            assert again.status_code == 304
    assert client.get("/static/missing.css").status_code == 404
