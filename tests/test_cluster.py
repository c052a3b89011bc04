"""Several servers, one site: nginx round-robin in front of two servers on one PostgreSQL.

nginx is Debian's binary, started here as the current user with every path in the test's
folder and the server block the README shows; the two servers are waitress processes
that share the database and nothing else (each its own instance folder, no SECRET_KEY).
In CI (CI=true) a missing nginx fails these tests; elsewhere it skips them with the
command that installs it.
"""

import http.client
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path

import psycopg
import pytest
from images import image_bytes, opened
from live import FAST_HASH, HOST, Server, form, log_in, request
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from flaskr.settings import DEFAULTS

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
SECTION = "## Running on PostgreSQL and several servers"
# The README's example addresses, which the test replaces with its own.
README_SERVERS = ("127.0.0.1:8001", "127.0.0.1:8002")
README_LISTEN = "listen 80;"
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")
# Bounds for processes to start and stop on a busy machine; never a timing assertion.
PATIENCE_SECONDS = 20
# The burst of writes: how long it runs before and after one server is killed.
WRITES_BEFORE_KILL_SECONDS = 1.5
WRITES_AFTER_KILL_SECONDS = 2.0
WRITERS = 3
# The top of nginx's configuration: everything in the test's folder, in the foreground.
# The site itself is the README's block, included inside http.
NGINX_CONF = """\
daemon off;
worker_processes 1;
{user}pid {folder}/nginx.pid;
error_log {folder}/error.log notice;
events {{
    worker_connections 256;
}}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/flaskr.conf;
}}
"""


def in_ci():
    return os.environ.get("CI", "").lower() in ("true", "1")


def nginx_binary():
    """Return nginx's path; fail in CI, skip elsewhere, when it is missing."""
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    message = (
        "nginx not found: install it with `apt-get install nginx` (as root) to run the"
        " test of several servers."
    )
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def readme_nginx_block():
    """Return the nginx configuration the README shows (its indented block, dedented)."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    # From `upstream flaskr {` to the last closing brace before unindented text.
    match = re.search(r"\n\n(    upstream flaskr \{\n(?:(?:    .*)?\n)*?    \}\n)\n(?=\S)", section)
    assert match, "the README's section shows no nginx block starting `upstream flaskr {`"
    block = match[1].rstrip("\n").split("\n")
    return "".join(line.removeprefix("    ") + "\n" for line in block)


def site_config(template, listen_port, server_ports):
    """The README's block with the test's ports in place of its example addresses."""
    for placeholder in (*README_SERVERS, README_LISTEN):
        assert template.count(placeholder) == 1, placeholder
    config = template.replace(README_LISTEN, f"listen {HOST}:{listen_port};")
    for placeholder, port in zip(README_SERVERS, server_ports, strict=True):
        config = config.replace(placeholder, f"{HOST}:{port}")
    return config


def free_port():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def listening(port):
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


class Nginx:
    """nginx in the foreground, configured in folder; stopped by its pid."""

    def __init__(self, folder, site):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        # As root, nginx's workers would switch to `nobody`, who cannot enter the test's
        # folder for the temporary files of large bodies.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.folder / "nginx.conf").write_text(NGINX_CONF.format(user=user, folder=self.folder))
        binary = nginx_binary()
        # A port chosen in advance may be taken meanwhile: try another.
        for _ in range(3):
            self.port = free_port()
            (self.folder / "flaskr.conf").write_text(site(self.port))
            (self.folder / "error.log").unlink(missing_ok=True)
            self.process = subprocess.Popen(
                [binary, "-p", f"{self.folder}/", "-c", f"{self.folder}/nginx.conf"]
                + ["-e", f"{self.folder}/error.log"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + PATIENCE_SECONDS
            while self.process.poll() is None and time.monotonic() < deadline:
                # nginx writes its pid file once its port is bound.
                if self.pid_file_names_it() and listening(self.port):
                    return
                time.sleep(0.05)
            self.stop()
            if "Address already in use" not in self.log():
                break
        raise RuntimeError(f"nginx did not start:\n{self.log()}")

    def pid_file_names_it(self):
        try:
            return (self.folder / "nginx.pid").read_text().strip() == str(self.process.pid)
        except FileNotFoundError:
            return False

    def log(self):
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self):
        """Stop nginx and its worker (fast shutdown); kill its process group if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=PATIENCE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def deployment(url, instance):
    """A server's environment: this one's, with only the deployment's FLASKR_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASKR_")}
    env.update(
        FLASKR_DATABASE=url,
        FLASKR_INSTANCE_PATH=str(instance),
        FLASKR_PROXY_FIX="1",
        FLASKR_PASSWORD_HASH_METHOD=FAST_HASH,
    )
    return env


class Site:
    """nginx (README's configuration) in front of two servers on one PostgreSQL database."""

    def __init__(self, tmp_path, url):
        self.url = url
        self.instances = [tmp_path / "server-a", tmp_path / "server-b"]
        self.servers = []
        self.nginx = None
        try:
            with ThreadPoolExecutor(2) as pool:
                starting = [
                    pool.submit(Server, folder, deployment(url, folder))
                    for folder in self.instances
                ]
            # Every server that started is kept, to be stopped, before any failure is raised.
            self.servers = [future.result() for future in starting if not future.exception()]
            for future in starting:
                future.result()
            self.template = readme_nginx_block()
            self.config = None

            def site(port):
                self.config = site_config(self.template, port, [s.port for s in self.servers])
                return self.config

            self.nginx = Nginx(tmp_path / "nginx", site)
        except BaseException:
            self.stop()
            raise
        self.port = self.nginx.port
        self.origin = f"http://{HOST}:{self.port}"

    def stop(self):
        if self.nginx is not None:
            self.nginx.stop()
        for server in self.servers:
            server.stop()

    def query(self, sql, params=()):
        with psycopg.connect(self.url) as db:
            return db.execute(sql, params).fetchall()

    def served(self, server, method, path, status=200):
        """How many requests for path a server logged with this status."""
        line = re.compile(rf" {method} {re.escape(path)} {status} ")
        return len(line.findall(server.log()))


@pytest.fixture
def site(tmp_path, postgresql_databases):
    """Two servers and nginx on one new database, migrated once by `flask init-db`."""
    nginx_binary()  # before anything starts: skip or fail at once
    name, url = postgresql_databases.create()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "flaskr", "init-db"],
            env=deployment(url, tmp_path / "deploy"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "Initialized" in result.stdout
        site = Site(tmp_path, url)
        try:
            yield site
        finally:
            site.stop()
    finally:
        postgresql_databases.drop(name)


def post_form(title, image=None):
    """A post form to publish, as multipart with an image when given."""
    fields = {
        "title": title,
        "body": f"The body of {title}.",
        "tags": "cluster",
        "action": "publish",
    }
    if image is None:
        return form(**fields)
    fields["image"] = FileStorage(io.BytesIO(image), filename="photo.png")
    boundary, body = encode_multipart(fields)
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def created_id(status, headers):
    """The new post's id when a create was acknowledged (a redirect to the post), else None."""
    match = re.fullmatch(r"/(\d+)/[\w-]+", headers.get("Location") or "")
    return int(match[1]) if status == 302 and match else None


def test_the_nginx_configuration_is_the_one_the_readme_shows(site):
    config = (site.nginx.folder / "flaskr.conf").read_text()
    assert config == site.config
    # Putting the README's example addresses back gives the README's block, byte for byte.
    restored = config.replace(f"listen {HOST}:{site.port};", README_LISTEN)
    for placeholder, server in zip(README_SERVERS, site.servers, strict=True):
        restored = restored.replace(f"{HOST}:{server.port}", placeholder)
    assert restored == site.template == readme_nginx_block()
    # nginx refuses what the servers would refuse anyway, and nothing they accept.
    megabytes = DEFAULTS["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    assert megabytes * 1024 * 1024 == DEFAULTS["MAX_CONTENT_LENGTH"]
    assert f"client_max_body_size {megabytes}m;" in config


def test_a_visit_across_both_servers(site):
    origin = {"Origin": site.origin}
    # Every POST carries the Origin a browser sends: the servers see the address the
    # visitor used (Host passed on), so the cross-site check lets the site's own forms in.
    body, headers = form(username="writer", password="a long enough password")
    status, response, _ = request(site.port, "POST", "/auth/register", body, headers | origin)
    assert (status, response["Location"]) == (302, "/auth/login")
    status, response, _ = request(site.port, "POST", "/auth/login", body, headers | origin)
    assert status == 302
    cookies = SimpleCookie()
    for header in response.get_all("Set-Cookie"):
        cookies.load(header)
    cookie = {"Cookie": f"session={cookies['session'].value}"} | origin

    # Signed on one server, honoured by both: the generated key lives in the database.
    for _ in range(2):
        status, _, page = request(site.port, "GET", "/", None, cookie)
        assert status == 200
        assert b"Log Out" in page

    body, headers = post_form("Written through the proxy", image_bytes("PNG", (40, 30)))
    status, response, _ = request(site.port, "POST", "/create", body, headers | cookie)
    id = created_id(status, response)
    assert id is not None
    post_path = response["Location"]
    body, headers = form(body="Seen from both sides.")
    status, response, _ = request(site.port, "POST", f"/{id}/comment", body, headers | cookie)
    assert status == 302
    status, response, _ = request(site.port, "POST", f"/{id}/like", "", cookie)
    assert status == 302
    # The check is real: a form from another origin is refused, on either server.
    elsewhere = cookie | {"Origin": f"http://{HOST}:1"}
    for _ in range(2):
        assert request(site.port, "POST", f"/{id}/like", "", elsewhere)[0] == 403

    # Each server reads the post, its comment, its like and its image from the database.
    (image,) = site.query("SELECT image FROM post WHERE id = %s", (id,))[0]
    image_path = f"/uploads/{image}"

    def read(path):
        status, response, data = request(site.port, "GET", path)
        assert status == 200
        if path == post_path:
            for text in ("Written through the proxy", "Seen from both sides.", "1 like"):
                assert text.encode() in data
            assert image_path.encode() in data
        else:
            assert response["Content-Type"] == "image/png"
            assert opened(data).size == (40, 30)

    for path in (post_path, image_path):
        # Round-robin: two reads in a row reach both servers (a few more are allowed).
        for _ in range(6):
            read(path)
            if all(site.served(server, "GET", path) for server in site.servers):
                break
        for server in site.servers:
            assert site.served(server, "GET", path) >= 1, server.log()
    # The writes were spread too: round-robin, one request after another.
    for server in site.servers:
        assert re.search(r" POST /\S+ 302 ", server.log()), server.log()

    # An address a client claims is not believed: one proxy is trusted, nginx.
    request(site.port, "GET", "/hello", None, {"X-Forwarded-For": "203.0.113.9"})
    logs = "".join(server.log() for server in site.servers)
    assert f"{HOST} GET /hello 200" in logs
    assert "203.0.113.9" not in logs

    # Nothing was kept on either server's disk: images, the key and sessions are in the
    # database (each instance folder holds only the server's log).
    for folder in site.instances:
        assert sorted(path.name for path in folder.iterdir()) == [
            path.name for path in folder.glob("server-*.log")
        ]
    assert "[error]" not in site.nginx.log(), site.nginx.log()


def test_a_post_written_on_one_server_shows_at_once_on_the_others_cached_pages(site):
    first, second = site.servers
    cookie = log_in(first.port)
    # A visitor's index on each server, then again: the second one comes from its cache.
    for server in (first, second, first, second):
        status, _, page = request(server.port, "GET", "/")
        assert status == 200
        assert b"Fresh from the first server" not in page

    body, headers = post_form("Fresh from the first server")
    status, response, _ = request(first.port, "POST", "/create", body, headers | cookie)
    assert created_id(status, response) is not None

    status, _, page = request(second.port, "GET", "/")
    assert status == 200
    assert b"Fresh from the first server" in page
    for _ in range(2):
        status, _, page = request(site.port, "GET", "/")
        assert b"Fresh from the first server" in page


def test_killing_a_server_during_writes_loses_and_doubles_nothing(site, record_property):
    cookie = log_in(site.port)
    victim = site.servers[1]
    stop = threading.Event()
    # Set just before the signal: whatever the kill makes fail ends after it is set.
    killing = threading.Event()
    # Set once the victim is gone: whatever begins after it meets only the server left.
    dead = threading.Event()
    # (title, status, new post's id or None, began after the death, ended after the kill)
    attempts = []
    reads = []  # (status, began after the death, ended after the kill)
    lock = threading.Lock()

    def outcome(method, path, body=None, headers=None):
        """(status, headers), or (the exception's name, None) when the answer was cut off."""
        try:
            status, response, _ = request(site.port, method, path, body, headers)
            return status, response
        except (OSError, http.client.HTTPException) as error:
            return type(error).__name__, None

    def write(writer):
        for n in range(10_000):
            if stop.is_set():
                return
            title = f"burst {writer}-{n}"
            began_after = dead.is_set()
            body, headers = post_form(title)
            status, response = outcome("POST", "/create", body, headers | cookie)
            id = created_id(status, response) if response else None
            with lock:
                attempts.append((title, status, id, began_after, killing.is_set()))

    def read():
        while not stop.is_set():
            began_after = dead.is_set()
            status, _ = outcome("GET", "/")
            with lock:
                reads.append((status, began_after, killing.is_set()))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(WRITERS)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    try:
        time.sleep(WRITES_BEFORE_KILL_SECONDS)
        killing.set()
        victim.kill()
        dead.set()
        time.sleep(WRITES_AFTER_KILL_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=PATIENCE_SECONDS)
    assert not any(thread.is_alive() for thread in threads)

    stored = {}
    for title, id in site.query("SELECT title, id FROM post WHERE title LIKE 'burst %%'"):
        stored.setdefault(title, []).append(id)
    acknowledged = [(title, id) for title, _, id, *_ in attempts if id is not None]
    failed = [attempt for attempt in attempts if attempt[2] is None]
    # Every acknowledged post is stored once, under the id its redirect named.
    for title, id in acknowledged:
        assert stored.get(title) == [id], title
    # Nothing is stored twice, nor anything nobody tried.
    assert all(len(ids) == 1 for ids in stored.values()), stored
    assert set(stored) <= {title for title, *_ in attempts}
    # Only a create on its way through the killed server may fail: 502 when it died
    # before answering, an answer cut off when it died while answering (whether that one
    # committed, it committed whole, and once). Nothing else fails.
    assert {status for _, status, *_ in failed} <= {502, "IncompleteRead"}, failed
    assert all(ended_after and not began_after for *_, began_after, ended_after in failed)
    # Every write begun once the victim was gone was taken by the server left.
    after_death = [id for _, _, id, began_after, _ in attempts if began_after]
    assert after_death and all(after_death), attempts
    # Both servers took writes before the kill: the victim really was in the rotation.
    assert site.served(victim, "POST", "/create", 302) >= 1
    assert site.served(site.servers[0], "POST", "/create", 302) >= 1
    # Reads never get an error page: one that met the dead server before its answer began
    # goes on to the live one (nginx retries an idempotent request); only an answer the
    # kill cut off in the middle fails, and every read begun after it gets 200.
    assert reads and {status for status, *_ in reads} <= {200, "IncompleteRead"}, reads
    assert all(ended_after for status, _, ended_after in reads if status != 200), reads
    assert {status for status, began_after, _ in reads if began_after} == {200}, reads

    # Afterwards the site answers on the one server left.
    title, id = acknowledged[-1]
    for path in ("/", f"/{id}", "/healthz", "/feed.atom"):
        for _ in range(3):
            status, response, _ = request(site.port, "GET", path)
            if status == 301:  # /<id> moves to the post's URL with its slug
                status = request(site.port, "GET", response["Location"])[0]
            assert status == 200, path

    measured = {
        "writes tried": len(attempts),
        "acknowledged": len(acknowledged),
        "acknowledged, begun after the kill": sum(
            1 for _, _, id, began_after, _ in attempts if id and began_after
        ),
        "failed by the kill": [status for _, status, *_ in failed],
        "stored without acknowledgement": len(set(stored) - {t for t, _ in acknowledged}),
        "reads": len(reads),
        "reads cut off by the kill": sum(1 for status, *_ in reads if status != 200),
    }
    for name, value in measured.items():
        record_property(name, value)
    print(measured)
