"""A throwaway PostgreSQL cluster for the tests, and a fresh database per test.

FLASKR_TEST_DATABASE_URL names a server to use instead (its user must be allowed to
create databases). Otherwise initdb and pg_ctl, from the PATH or Debian's
/usr/lib/postgresql/*/bin, make a cluster in a temporary folder that only listens on a
socket there; as root they run as the postgres user, since PostgreSQL refuses root.
"""

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from urllib.parse import quote

import psycopg

TEMPLATE = "flaskr_template"


def server_binary(name):
    """Return the path of a PostgreSQL server program, or raise naming what is missing."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    raise RuntimeError(
        f"{name} not found: install PostgreSQL's server (Debian: apt-get install postgresql)"
        " or set FLASKR_TEST_DATABASE_URL"
    )


def as_server_user(command):
    """The command run as the postgres user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class Cluster:
    """A PostgreSQL cluster of our own, started on a socket in a temporary folder."""

    def __init__(self):
        # Short: a socket's path must fit in about 100 bytes.
        self.folder = tempfile.mkdtemp(prefix="flaskr-pg-", dir="/tmp")
        self.data = os.path.join(self.folder, "data")
        self.log = os.path.join(self.folder, "server.log")
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            as_server_user(
                [
                    server_binary("initdb"),
                    "--pgdata",
                    self.data,
                    "--username=postgres",
                    "--auth=trust",
                    "--no-sync",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-c listen_addresses='' -c unix_socket_directories={self.folder}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        subprocess.run(
            as_server_user(
                [server_binary("pg_ctl"), "--pgdata", self.data, "--log", self.log]
                + ["--options", options, "--wait", "start"]
            ),
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql://postgres@/postgres?host={quote(self.folder)}"

    def stop(self):
        subprocess.run(
            as_server_user(
                [server_binary("pg_ctl"), "--pgdata", self.data, "--mode=immediate", "stop"]
            ),
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def database_url(server_url, name):
    """The URL of database `name` on the server of server_url."""
    base, _, query = server_url.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


class Databases:
    """Fresh databases on one server: empty ones, or copies of a migrated template."""

    def __init__(self, server_url):
        self.server_url = server_url
        self.admin = psycopg.connect(server_url, autocommit=True)
        self.names = (f"flaskr_test_{os.getpid()}_{n}" for n in itertools.count())
        self.template = None

    def create(self, template="template0"):
        name = next(self.names)
        self.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return name, database_url(self.server_url, name)

    def migrated(self, migrate):
        """Return a new database holding the current schema; migrate(url) makes the first."""
        if self.template is None:
            name, url = self.create()
            migrate(url)
            self.template = name
        return self.create(self.template)

    def drop(self, name):
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self):
        if self.template is not None:
            self.drop(self.template)
        self.admin.close()
