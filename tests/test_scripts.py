"""The scripts: the locks, the set-up's install step, the busy port, and the workers' stops."""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from live import FAST_HASH, HOST, log_in, request
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent
WORKERS = ROOT / "scripts" / "workers.py"
PYPROJECT = ROOT / "pyproject.toml"
LOCKS = ROOT / "requirements"
# Generous bounds for processes to start or stop on a busy machine; never a timing assertion.
PATIENCE_SECONDS = 30


# -- the locks ------------------------------------------------------------------------------


def read_lock(text):
    """Return {name: (version, hashes)} of a lock, failing on any line that is not pinned."""
    entries = {}
    for entry in re.sub(r"\\\n", " ", text).splitlines():
        entry = entry.split("#", 1)[0].strip()
        if not entry:
            continue
        requirement, *options = entry.split()
        name, pinned, version = requirement.partition("==")
        assert pinned, f"not pinned to one version: {entry}"
        hashes = [option.removeprefix("--hash=") for option in options]
        assert hashes, f"no hashes: {entry}"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), entry
        entries[canonicalize_name(name)] = (version, hashes)
    return entries


def unlocked(requirements, lock):
    """Return the requirements (PEP 508 strings) the lock lacks or pins outside their range."""
    return [
        text
        for text in requirements
        if (requirement := Requirement(text))
        and (
            canonicalize_name(requirement.name) not in lock
            or not requirement.specifier.contains(lock[canonicalize_name(requirement.name)][0])
        )
    ]


def declared(pyproject, extras):
    """Return what pyproject.toml asks for: build system, runtime and the extras named."""
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    return [
        *pyproject["build-system"]["requires"],
        *project["dependencies"],
        *(text for extra in extras for text in optional[extra]),
    ]


def locks():
    pyproject = tomllib.loads(PYPROJECT.read_text())
    every_extra = list(pyproject["project"]["optional-dependencies"])
    return pyproject, {"serve": [], "test": every_extra}


@pytest.mark.parametrize("name", ["serve", "test"])
def test_each_lock_pins_everything_pyproject_asks_for(name):
    pyproject, extras = locks()
    lock = read_lock((LOCKS / f"{name}.txt").read_text())
    assert unlocked(declared(pyproject, extras[name]), lock) == []


def test_the_test_lock_names_every_extra_and_agrees_with_the_serve_lock():
    pyproject, extras = locks()
    assert {"test", "postgresql"} <= set(extras["test"])
    serve = read_lock((LOCKS / "serve.txt").read_text())
    test = read_lock((LOCKS / "test.txt").read_text())
    # What serves is what was tested: the same versions, the same files.
    assert {name: test.get(name) for name in serve} == serve


def test_the_check_finds_a_dependency_the_lock_lacks_or_pins_outside_its_range():
    pyproject, _ = locks()
    lock = read_lock((LOCKS / "test.txt").read_text())
    pyproject["project"]["dependencies"] += ["not-locked-anywhere>=1", "flask<1"]
    pyproject["project"]["optional-dependencies"]["new"] = ["another-new-one"]
    assert unlocked(declared(pyproject, ["test", "new"]), lock) == [
        "not-locked-anywhere>=1",
        "flask<1",
        "another-new-one",
    ]


@pytest.mark.parametrize("name", ["serve", "test"])
def test_every_locked_package_is_pinned_with_hashes(name):
    # read_lock refuses ranges, links, local paths and options other than hashes (an index,
    # a mirror or local wheels of this machine's have no place in what every machine installs).
    lock = read_lock((LOCKS / f"{name}.txt").read_text())
    assert len(lock) > 10
    assert all(hashes for _, hashes in lock.values())


@pytest.mark.parametrize(
    "text",
    [
        "flask>=3.0 \\\n    --hash=sha256:" + "0" * 64 + "\n",
        "--index-url https://example.invalid/simple\nflask==3.1.0\n",
        "flask @ file:///tmp/flask-3.1.0-py3-none-any.whl\n",
        "flask==3.1.0 --hash=md5:1234\n",
        "flask==3.1.0\n",
        "flask==3.1.0 --find-links /tmp/wheels\n",
    ],
)
def test_the_check_refuses_a_line_not_pinned_with_hashes(text):
    with pytest.raises(AssertionError):
        read_lock(text)


# -- the install step -----------------------------------------------------------------------

# Stands in for .venv's python: "-m pip ..." is only recorded (and fails with FAIL set);
# anything else runs on the real interpreter.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -m ]; then
  echo "$*" >>"$(dirname "$0")/../../pip-calls"
  if [ -n "${FAIL:-}" ]; then echo "ERROR: No matching distribution found for flask"; exit 1; fi
  echo "Successfully installed flask"
  exit 0
fi
exec %s "$@"
"""


@pytest.fixture
def checkout(tmp_path):
    """A copy of what the set-up reads, with a .venv whose pip only records its calls."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    shutil.copytree(LOCKS, copy / "requirements")
    shutil.copy(PYPROJECT, copy)
    python = copy / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON % sys.executable)
    python.chmod(0o755)
    return copy


def set_up(checkout, lock, **env):
    """Run the scripts' install step for a lock; return (exit status, output, pip calls)."""
    result = subprocess.run(
        ["bash", "-c", f". scripts/lib.sh && ensure_venv {lock}"],
        cwd=checkout,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )
    calls = checkout / "pip-calls"
    made = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return result.returncode, result.stdout + result.stderr, made


def test_installing_prints_one_line_and_happens_again_only_when_the_lock_changes(checkout):
    status, output, calls = set_up(checkout, "serve")
    assert (status, output) == (0, "Installing Flaskr and its dependencies...\n")
    assert calls == [
        "-m pip install --disable-pip-version-check --require-hashes -r requirements/serve.txt",
        "-m pip install --disable-pip-version-check --no-deps --no-build-isolation -e .",
    ]
    assert "Successfully installed" in (checkout / ".venv" / "install.log").read_text()

    assert set_up(checkout, "serve") == (0, "", [])

    # The test lock holds the serve lock, so once it is installed both are.
    status, output, calls = set_up(checkout, "test")
    assert (status, output, calls[0].split()[-1]) == (0, output, "requirements/test.txt")
    assert output == "Installing Flaskr and its dependencies...\n"
    assert set_up(checkout, "serve") == (0, "", [])
    assert set_up(checkout, "test") == (0, "", [])

    with open(checkout / "pyproject.toml", "a") as f:
        f.write("\n# changed\n")
    assert len(set_up(checkout, "test")[2]) == 2
    with open(checkout / "requirements" / "test.txt", "a") as f:
        f.write("\n# changed\n")
    assert len(set_up(checkout, "test")[2]) == 2
    assert set_up(checkout, "test") == (0, "", [])


def test_a_failed_install_shows_pips_output_and_is_tried_again(checkout):
    status, output, calls = set_up(checkout, "serve", FAIL="1")
    assert status == 1
    assert "ERROR: No matching distribution found for flask" in output
    assert "Installing failed" in output
    assert len(calls) == 1
    assert not (checkout / ".venv" / "installed").exists()

    status, output, calls = set_up(checkout, "serve")
    assert (status, len(calls)) == (0, 2)


# -- Debian packages -----------------------------------------------------------------------


@pytest.fixture
def system(tmp_path):
    """Stand-ins for dpkg-query (only "chromium" installed), id and apt-get (recorded)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    stubs = {
        "dpkg-query": '[ "${@: -1}" = chromium ] && printf installed',
        "id": 'echo "${USER_ID:-0}"',
        "apt-get": f'echo "$*" >>{tmp_path}/apt-calls\n'
        '[ -z "${FAIL:-}" ] || { echo E: x; exit 1; }',
    }
    for name, body in stubs.items():
        (folder / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (folder / name).chmod(0o755)
    return tmp_path


def ensure_packages(system, *packages, **env):
    result = subprocess.run(
        ["bash", "-c", f". {ROOT}/scripts/lib.sh && ensure_debian_packages {' '.join(packages)}"],
        cwd=system,
        env={**os.environ, "PATH": f"{system / 'bin'}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )
    calls = system / "apt-calls"
    return (
        result.returncode,
        result.stdout + result.stderr,
        calls.read_text() if calls.exists() else "",
    )


def test_a_fresh_machine_gets_the_servers_the_tests_start():
    # Debian's Chromium (browser tests), PostgreSQL (a throwaway cluster) and nginx (in
    # front of two servers): what scripts/test installs when they are missing.
    result = subprocess.run(
        ["bash", "-c", f'. {ROOT}/scripts/lib.sh && echo "${{TEST_PACKAGES[@]}}"'],
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )
    assert result.stdout.split() == ["chromium", "postgresql", "nginx"]


def test_installed_packages_are_left_alone(system):
    assert ensure_packages(system, "chromium") == (0, "", "")


def test_missing_packages_are_installed_in_one_go_as_root(system):
    status, output, calls = ensure_packages(system, "chromium", "postgresql", "nginx")
    assert (status, output) == (
        0,
        "Installing postgresql nginx (Debian packages) for the tests...\n",
    )
    assert calls == "update -qq\ninstall -y -qq postgresql nginx\n"


def test_a_failed_package_install_shows_apt_gets_output(system):
    status, output, _ = ensure_packages(system, "nginx", FAIL="1")
    assert status == 1
    assert "E: x" in output


def test_missing_packages_without_root_are_named_with_the_command(system):
    status, output, calls = ensure_packages(system, "chromium", "nginx", USER_ID="1000")
    assert (status, calls) == (0, "")
    assert output == (
        "Missing Debian packages: nginx; 'sudo apt-get install nginx' lets the tests that"
        " need them run.\n"
    )


# -- the port -------------------------------------------------------------------------------


@pytest.fixture
def taken_port():
    """A port on which something already listens."""
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_serve_on_a_taken_port_says_so_in_one_line_before_any_setup(taken_port):
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "serve")],
        env={**os.environ, "PORT": str(taken_port)},
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Port {taken_port} on 127.0.0.1 is already in use; choose another,"
        f" for example: PORT={taken_port + 1} bash scripts/serve\n"
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"PORT": "eighty"}, "PORT must be a port number (0 to 65535), not 'eighty'.\n"),
        ({"PORT": "70000"}, "PORT must be a port number (0 to 65535), not '70000'.\n"),
        ({"WORKERS": "0"}, "WORKERS must be a whole number of at least 1, not '0'.\n"),
        ({"WORKERS": "two"}, "WORKERS must be a whole number of at least 1, not 'two'.\n"),
    ],
)
def test_serve_refuses_a_bad_port_or_worker_count_in_one_line(variables, message):
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "serve")],
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )
    assert (result.returncode, result.stdout, result.stderr) == (1, "", message)


def test_workers_on_a_taken_port_say_so_in_one_line(taken_port):
    result = subprocess.run(
        [sys.executable, str(WORKERS), "--port", str(taken_port), "flaskr:create_app"],
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Port {taken_port} on 127.0.0.1 is already in use; choose another,"
        f" for example: PORT={taken_port + 1} bash scripts/serve"
    ]


def test_the_port_check_passes_a_free_port_and_binds_nothing():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, str(WORKERS), "--check", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    with socket.socket() as again:
        again.bind((HOST, port))


# -- the workers ----------------------------------------------------------------------------


def running(pid):
    """Whether a process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid):
    """Return the pids of a process's running children."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def eventually(condition):
    """Wait until condition() is true, up to PATIENCE_SECONDS; return its last value."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not (result := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


class Workers:
    """scripts/workers.py serving Flaskr on an OS-chosen port, in its own process group."""

    def __init__(self, tmp_path, count=2):
        self.log_path = tmp_path / "workers.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKERS), "--port", "0", "--workers", str(count)]
                + ["flaskr:create_app"],
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        ready, _, _ = select.select([self.process.stdout], [], [], PATIENCE_SECONDS)
        self.line = self.process.stdout.readline().decode() if ready else ""
        match = re.fullmatch(
            rf"Serving on http://127\.0\.0\.1:(\d+)/ with {count} workers?\n", self.line
        )
        assert match, (self.line, self.log())
        self.port = int(match[1])
        self.pid = self.process.pid
        self.workers = children(self.pid)

    def log(self):
        return self.log_path.read_text()

    def wait(self):
        """Return the exit status once the parent has exited."""
        try:
            return self.process.wait(timeout=PATIENCE_SECONDS)
        finally:
            self.process.stdout.close()

    def cleanup(self):
        """Kill whatever a failing test left running."""
        for pid in [self.pid, *self.workers]:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def workers(tmp_path, monkeypatch):
    """Start workers on a fresh instance folder (configured by FLASKR_* only); clean up after."""
    monkeypatch.setenv("FLASKR_PASSWORD_HASH_METHOD", FAST_HASH)
    started = []

    def start(count=2):
        started.append(Workers(tmp_path, count))
        return started[-1]

    yield start
    for server in started:
        server.cleanup()


def port_is_free(port):
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def test_workers_serve_one_site_and_stop_together_on_sigterm(workers, tmp_path):
    from flaskr import create_app
    from flaskr.db import init_db

    with create_app().app_context():
        init_db()
    server = workers(2)
    assert len(server.workers) == 2
    # Whichever worker takes a request, it knows the session: one key, one database.
    cookie = log_in(server.port)
    for _ in range(20):
        status, _, page = request(server.port, "GET", "/", None, cookie)
        assert status == 200
        assert b"Log Out" in page

    os.kill(server.pid, signal.SIGTERM)
    assert server.wait() == 0
    assert eventually(lambda: not any(running(pid) for pid in server.workers))
    assert port_is_free(server.port)
    assert "Traceback" not in server.log(), server.log()


def test_ctrl_c_stops_every_worker(workers):
    server = workers(2)
    assert request(server.port, "GET", "/hello")[2] == b"Hello, World!"
    # A terminal's Ctrl-C interrupts the whole foreground process group.
    os.killpg(server.pid, signal.SIGINT)
    assert server.wait() == 0
    assert eventually(lambda: not any(running(pid) for pid in server.workers))
    assert "Traceback" not in server.log(), server.log()


def test_workers_exit_when_their_parent_is_killed_outright(workers):
    server = workers(2)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    assert eventually(lambda: not any(running(pid) for pid in server.workers))
    assert eventually(lambda: port_is_free(server.port))


def test_a_worker_that_dies_stops_the_others(workers):
    server = workers(3)
    victim, *others = sorted(server.workers)
    os.kill(victim, signal.SIGKILL)
    assert server.wait() == 1
    assert eventually(lambda: not any(running(pid) for pid in others))
    assert f"Worker {victim} was killed by SIGKILL; stopping the others" in server.log()


def test_a_worker_that_cannot_start_stops_them_all(workers, tmp_path, monkeypatch):
    # An instance "folder" that is a file: creating the app fails in every worker.
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("")
    monkeypatch.setenv("FLASKR_INSTANCE_PATH", str(not_a_folder))
    server = workers(1)
    assert server.line == f"Serving on http://127.0.0.1:{server.port}/ with 1 worker\n"
    assert server.wait() == 1
    assert re.search(r"Worker \d+ exited with status 1; stopping the others", server.log())
    assert "FileExistsError" in server.log()


def test_the_parent_refuses_a_factory_it_cannot_find(tmp_path):
    result = subprocess.run(
        [sys.executable, str(WORKERS), "--port", "0", "--workers", "1", "flaskr"],
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "Expected MODULE:FACTORY, got 'flaskr'\n"
