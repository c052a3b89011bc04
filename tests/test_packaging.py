"""The wheel: built without warnings, carrying templates, static files, migrations and data."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE_DATA = ("templates", "static", "migrations", "data")
BUILD_WHEEL = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"


def test_wheel_builds_without_warnings_and_carries_every_data_file(tmp_path):
    # Built from a copy, so the checkout gets no build/ or egg-info folders.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(ROOT / "flaskr", source / "flaskr", ignore=shutil.ignore_patterns("*.pyc"))
    for name in ("pyproject.toml", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, source)
    # The build backend itself, so everything it says is seen. Whether bytecode may be
    # written is the environment's choice, and setuptools mentions skipping it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run(
        [sys.executable, "-c", BUILD_WHEEL, str(tmp_path / "dist")],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # The temporary folder is named after this test, whose name holds "warn".
    output = (result.stdout + result.stderr).replace(str(tmp_path), "<tmp>")
    assert "adding 'flaskr/__init__.py'" in output
    assert "warn" not in output.lower(), output

    (wheel,) = (tmp_path / "dist").glob("flaskr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "flaskr"
    expected = {
        path.relative_to(ROOT).as_posix()
        for folder in PACKAGE_DATA
        for path in (package / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert {
        "flaskr/migrations/0001_tutorial.sql",
        "flaskr/static/style.css",
        "flaskr/templates/base.html",
        "flaskr/data/common-passwords.txt",
    } <= expected
    assert expected <= names
