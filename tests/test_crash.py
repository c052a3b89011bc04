"""A server killed in the middle of writes keeps every acknowledged post and starts again."""

import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from flaskr import create_app
from flaskr.db import init_db

HOST = "127.0.0.1"
WRITERS = 4
# Quick logins, as in conftest.py.
FAST_HASH = "scrypt:16384:8:1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None):
    """Send one request; return (status, headers, body)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def form(**fields):
    return urllib.parse.urlencode(fields), {"Content-Type": "application/x-www-form-urlencoded"}


class Server:
    """waitress serving Flaskr from the test's instance folder on a free loopback port."""

    def __init__(self, instance):
        self.port = free_port()
        self.log = open(instance / f"server-{self.port}.log", "wb")
        waitress = Path(sys.executable).with_name("waitress-serve")
        command = [str(waitress)] if waitress.exists() else [sys.executable, "-m", "waitress"]
        try:
            self.process = subprocess.Popen(
                [*command, f"--listen={HOST}:{self.port}", "--threads=4"]
                + ["--call", "flaskr:create_app"],
                env=os.environ.copy(),
                stdout=subprocess.DEVNULL,
                stderr=self.log,
            )
        except BaseException:
            self.log.close()
            raise

    def wait_healthy(self):
        """Poll /healthz until it answers 200; fail if the server exits or never answers."""
        for _ in range(300):
            assert self.process.poll() is None, "the server exited"
            try:
                if request(self.port, "GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail("the server did not become healthy")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def servers(tmp_path, monkeypatch):
    """Start servers on one fresh database (configured by FLASKR_* only); stop them after."""
    instance = tmp_path / "instance"
    monkeypatch.setenv("FLASKR_SECRET_KEY", "crash-test-key")
    monkeypatch.setenv("FLASKR_PASSWORD_HASH_METHOD", FAST_HASH)
    with create_app().app_context():
        init_db()
    started = []

    def start():
        server = Server(instance)
        started.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in started:
        server.stop()


def log_in(port):
    """Register and log in a user; return the session cookie header."""
    body, headers = form(username="writer", password="a long enough password")
    assert request(port, "POST", "/auth/register", body, headers)[0] == 302
    status, response_headers, _ = request(port, "POST", "/auth/login", body, headers)
    assert status == 302
    cookie = SimpleCookie(response_headers["Set-Cookie"])
    return {"Cookie": f"session={cookie['session'].value}"}


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
