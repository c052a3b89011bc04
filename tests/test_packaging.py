import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_carries_templates_static_files_and_migrations(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("flaskr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "flaskr"
    expected = {
        path.relative_to(ROOT).as_posix()
        for folder in ("templates", "static", "migrations")
        for path in (package / folder).rglob("*")
        if path.is_file()
    }
    assert {"flaskr/migrations/0001_tutorial.sql", "flaskr/static/style.css"} <= expected
    assert expected <= names
