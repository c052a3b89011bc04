"""Live servers for tests and the benchmark: Flaskr under waitress on an OS-chosen port.

The server binds port 0 and prints the address the system gave it, so there is no window in
which another process can take a port picked in advance. Nothing here needs pytest.
"""

import http.client
import itertools
import os
import re
import select
import signal
import subprocess
import sys
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

HOST = "127.0.0.1"
# Cheaper than production's scrypt so the suite stays quick; test_auth pins the default.
FAST_HASH = "scrypt:16384:8:1"
SERVE_APP = Path(__file__).with_name("serve_app.py")
START_TIMEOUT_SECONDS = 30
# The first line a server prints: where it listens.
SERVING = re.compile(r"Serving on http://[^\s/]+:(\d+)/")
_numbers = itertools.count(1)


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
    """A live Flaskr server, configured by FLASKR_* variables, logging to a file.

    command defaults to waitress on an OS-chosen port (serve_app.py); any command that
    prints "Serving on http://HOST:PORT/..." as its first line of output will do, such as
    scripts/workers.py with --port 0. env defaults to this process's environment; the log
    is instance/server-N.log. Usable as a context manager, which stops it.
    """

    def __init__(self, instance, env=None, command=None):
        Path(instance).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(instance) / f"server-{next(_numbers)}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command or [sys.executable, str(SERVE_APP)],
                env=dict(os.environ if env is None else env),
                stdout=subprocess.PIPE,
                stderr=log,
            )
        try:
            self.port = self._read_port()
        except BaseException:
            self.stop()
            raise
        self.url = f"http://{HOST}:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _read_port(self):
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_SECONDS)
        line = self.process.stdout.readline().decode() if ready else ""
        match = SERVING.match(line)
        if not match:
            raise RuntimeError(f"the server did not start; see {self.log_path}")
        return int(match[1])

    def kill(self):
        """End the server at once, as a crash would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        """Ask the server to stop; kill it if it does not within 10 seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process.stdout.close()

    def log(self):
        """Return what the server has logged so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def cpu_seconds(self):
        """Return the CPU time (user + system) of the server and its children, or None off Linux."""
        total, pid = 0.0, str(self.process.pid)
        try:
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # a process that ended meanwhile
                if stat.parent.name == pid or fields[1] == pid:
                    total += int(fields[11]) + int(fields[12])
        except OSError:
            return None
        return total / os.sysconf("SC_CLK_TCK")


def log_in(port, username="writer"):
    """Register and log in a user; return the session cookie header."""
    body, headers = form(username=username, password="a long enough password")
    assert request(port, "POST", "/auth/register", body, headers)[0] == 302
    status, response_headers, _ = request(port, "POST", "/auth/login", body, headers)
    assert status == 302
    cookies = SimpleCookie()
    for header in response_headers.get_all("Set-Cookie"):
        cookies.load(header)
    return {"Cookie": f"session={cookies['session'].value}"}
