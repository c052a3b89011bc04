"""The blog over real HTTP: waitress configured only by FLASKR_* variables."""

import re
import sqlite3

from live import form, log_in, request


def rows(tmp_path, query):
    db = sqlite3.connect(tmp_path / "instance" / "flaskr.sqlite")
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def test_register_log_in_write_edit_and_delete(servers, tmp_path):
    server = servers()
    port = server.port
    cookie = log_in(port, username="alice")
    assert rows(tmp_path, "SELECT username FROM user") == [("alice",)]

    body, headers = form(title="Over the wire", body="Sent **for real**", tags="http, live")
    status, response_headers, _ = request(port, "POST", "/create", body, {**headers, **cookie})
    assert (status, response_headers["Location"]) == (302, "/")
    ((post_id, title),) = rows(tmp_path, "SELECT id, title FROM post")
    assert title == "Over the wire"

    status, response_headers, _ = request(port, "GET", f"/{post_id}")
    assert (status, response_headers["Location"]) == (301, f"/{post_id}/over-the-wire")
    status, _, page = request(port, "GET", f"/{post_id}/over-the-wire")
    assert status == 200
    assert b"<strong>for real</strong>" in page
    assert re.search(rb"by alice on \d{4}-\d\d-\d\d", page)

    body, headers = form(title="Edited over the wire", body="", tags="")
    status, _, _ = request(port, "POST", f"/{post_id}/update", body, {**headers, **cookie})
    assert status == 302
    assert rows(tmp_path, "SELECT title FROM post") == [("Edited over the wire",)]

    status, _, _ = request(port, "POST", f"/{post_id}/delete", None, cookie)
    assert status == 302
    assert rows(tmp_path, "SELECT COUNT(*) FROM post") == [(0,)]


def test_each_request_is_logged_once(servers, tmp_path):
    server = servers()
    request(server.port, "GET", "/hello")
    server.stop()
    log = server.log_path.read_text()
    assert log.count("GET /hello 200") == 1
