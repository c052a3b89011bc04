"""A live server for tests: waitress serving Flaskr on a free loopback port, over real HTTP."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

HOST = "127.0.0.1"
# Cheaper than production's scrypt so the suite stays quick; test_auth pins the default.
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


def log_in(port, username="writer"):
    """Register and log in a user; return the session cookie header."""
    body, headers = form(username=username, password="a long enough password")
    assert request(port, "POST", "/auth/register", body, headers)[0] == 302
    status, response_headers, _ = request(port, "POST", "/auth/login", body, headers)
    assert status == 302
    cookie = SimpleCookie()
    for header in response_headers.get_all("Set-Cookie"):
        cookie.load(header)
    return {"Cookie": f"session={cookie['session'].value}"}
