"""A server killed in the middle of writes keeps every acknowledged post and starts again."""

import http.client
import sqlite3
import threading
import time

from live import HOST, form, log_in, request

WRITERS = 4


def write_posts(port, cookie, number, acknowledged, stop):
    """POST /create until stopped or the server dies; note each title answered with 302."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        for i in range(10_000):
            if stop.is_set():
                return
            title = f"crash {number}-{i}"
            body, headers = form(title=title, body="written just before a crash")
            connection.request("POST", "/create", body=body, headers={**headers, **cookie})
            response = connection.getresponse()
            response.read()
            # A create redirects away from the form; a refused session would go to login.
            if response.status == 302 and "/auth/login" not in response.headers["Location"]:
                acknowledged.append(title)
    except (OSError, http.client.HTTPException):
        return  # the server was killed
    finally:
        connection.close()


def test_killed_server_keeps_acknowledged_posts(servers, tmp_path):
    server = servers()
    cookie = log_in(server.port)
    acknowledged, stop = [], threading.Event()
    writers = [
        threading.Thread(target=write_posts, args=(server.port, cookie, n, acknowledged, stop))
        for n in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    try:
        # Kill once writes are flowing, at least a second in: never on an idle server.
        started = time.monotonic()
        for _ in range(300):
            if len(acknowledged) >= 10 and time.monotonic() - started >= 1:
                break
            time.sleep(0.1)
        server.kill()
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert len(acknowledged) >= 10

    db = sqlite3.connect(tmp_path / "instance" / "flaskr.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = [title for (title,) in db.execute("SELECT title FROM post")]
    finally:
        db.close()
    assert len(stored) == len(set(stored))
    assert set(acknowledged) <= set(stored)

    again = servers()
    status, _, page = request(again.port, "GET", "/")
    assert status == 200
    assert b"crash " in page
