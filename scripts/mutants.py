"""Check that the suite catches the breakages it guards against.

Each mutant is one small textual change to Flaskr that a real mistake could make. For each,
the package and tests are copied to a temporary folder, the change is applied to the copy,
and the tests named for it are run there; the mutant must make at least one of them fail.
The working tree is never modified.

Usage: .venv/bin/python scripts/mutants.py [NAME-SUBSTRING ...]
Exit status 1 when a mutant survives (or no longer applies), 2 when the unchanged tests
fail, 0 when all are killed.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Mutant:
    name: str
    path: str  # relative to the repository
    old: str  # text that must occur exactly once
    new: str
    tests: tuple  # pytest arguments selecting the tests that must catch it


MUTANTS = [
    Mutant(
        "page number converted before its length is checked",
        "flaskr/pagination.py",
        "or len(raw) > len(str(MAX_PAGE))",
        "or int(raw) > MAX_PAGE",
        ("tests/test_blog.py", "-k", "digits"),
    ),
    Mutant(
        "throttling counts outside a write transaction",
        "flaskr/security.py",
        'does not push the wait further.\n    """\n    with transaction() as db:\n',
        'does not push the wait further.\n    """\n'
        "    with __import__('contextlib').nullcontext(\n"
        "        __import__('flaskr.db').db.get_db()\n"
        "    ) as db:\n",
        ("tests/test_security.py", "tests/test_auth.py"),
    ),
    Mutant(
        "a throttled attempt is recorded too",
        "flaskr/security.py",
        "        if wait:\n            return wait, None\n",
        "",
        ("tests/test_security.py", "tests/test_hostile.py"),
    ),
    Mutant(
        "the schema version is set after COMMIT",
        "flaskr/db.py",
        '                db.execute(statement)\n            db.execute(f"PRAGMA user_version',
        '                db.execute(statement)\n        db.execute(f"PRAGMA user_version',
        ("tests/test_db.py",),
    ),
    Mutant(
        "the schema version is read outside the write lock",
        "flaskr/db.py",
        "        with transaction(db):\n"
        "            # Read the version inside the write lock: two init-db runs at once apply\n"
        "            # each migration exactly once.\n"
        "            current = schema_version(db)\n",
        "        current = schema_version(db)\n        with transaction(db):\n",
        ("tests/test_db.py",),
    ),
    Mutant(
        "the page cache keys on the whole URL",
        "flaskr/caching.py",
        "key = (request.base_url, *(request.args.get(name) for name in args))",
        "key = (request.url,)",
        ("tests/test_caching.py",),
    ),
    Mutant(
        "a page over a sixteenth of the cache's budget is kept",
        "flaskr/caching.py",
        "        if size > self.largest:\n            return\n",
        "",
        ("tests/test_caching.py",),
    ),
    Mutant(
        "the page cache's watch stays open after a database fault",
        "flaskr/errors.py",
        "    close_watch_after_fault()\n",
        "",
        ("tests/test_faults.py", "-k", "watch"),
    ),
    Mutant(
        "an excerpt leaves its elements open",
        "flaskr/markdown.py",
        'closers = "".join(f"</{name}>" for name in reversed(open_elements))',
        'closers = ""',
        ("tests/test_markdown.py",),
    ),
    Mutant(
        "feeds carry whole bodies",
        "flaskr/feeds.py",
        "    if not excerpt.cut:\n",
        "    if True:\n        return render_markdown(post['body'])\n    if not excerpt.cut:\n",
        ("tests/test_feeds.py",),
    ),
    Mutant(
        "a post page shows all its comments",
        "flaskr/comments.py",
        "COMMENTS_PER_PAGE = 50",
        "COMMENTS_PER_PAGE = 1000",
        ("tests/test_comments.py",),
    ),
    Mutant(
        "table alignment left as a style attribute",
        "flaskr/markdown.py",
        'token.attrJoin("class", "align-" + ALIGNMENT.fullmatch(style).group(1))',
        'token.attrSet("style", style)',
        ("tests/test_markdown.py", "-k", "aligned"),
    ),
    Mutant(
        "images from other sites shown as images",
        "flaskr/markdown.py",
        "    if not EXTERNAL.match(src):\n",
        "    if True:\n",
        ("tests/test_markdown.py", "-k", "other_sites"),
    ),
    Mutant(
        "summaries kept without a bound",
        "flaskr/markdown.py",
        "            if len(self.entries) > self.size:\n",
        "            if False:\n",
        ("tests/test_markdown.py", "-k", "digest"),
    ),
    Mutant(
        "snippet text not escaped",
        "flaskr/snippets.py",
        'pattern.sub(r"<mark>\\1</mark>", html.escape(text))',
        'pattern.sub(r"<mark>\\1</mark>", text)',
        ("tests/test_snippets.py",),
    ),
    Mutant(
        "an outdated slug served instead of redirected",
        "flaskr/blog.py",
        'if slug != slugify(post["title"]):',
        "if slug is None:",
        ("tests/test_blog.py", "-k", "slug"),
    ),
    Mutant(
        "error pages read the database on server errors",
        "flaskr/errors.py",
        "    if error.code not in WAY_ON_ERRORS:\n        return ()\n",
        "",
        ("tests/test_errors.py",),
    ),
]


def run(mutant, workdir):
    """Apply the mutant in a fresh copy and run its tests; return (failed, seconds)."""
    copy = Path(workdir) / "tree"
    shutil.rmtree(copy, ignore_errors=True)
    for part in ("flaskr", "tests", "pyproject.toml"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / part)
    if mutant.new is not None:
        target = copy / mutant.path
        text = target.read_text(encoding="utf-8")
        found = text.count(mutant.old)
        if found != 1:
            raise LookupError(f"{mutant.path}: the text to change occurs {found} times")
        target.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(copy)}
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutant.tests],
        cwd=copy,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode != 0, time.monotonic() - started


def main(patterns):
    chosen = [m for m in MUTANTS if not patterns or any(p in m.name for p in patterns)]
    survivors = 0
    with tempfile.TemporaryDirectory() as workdir:
        # The control: unchanged, the same tests pass, so a failure below is the mutant's.
        selections = [arg for m in chosen for arg in m.tests if arg.startswith("tests/")]
        control = Mutant("no change", "", "", None, tuple(dict.fromkeys(selections)))
        failed, seconds = run(control, workdir)
        print(f"{'FAILED' if failed else 'passed':>9}  {seconds:5.1f}s  control: no change")
        if failed:
            return 2
        for mutant in chosen:
            try:
                killed, seconds = run(mutant, workdir)
                verdict = "killed" if killed else "SURVIVED"
            except LookupError as e:
                killed, seconds, verdict = False, 0.0, f"STALE ({e})"
            survivors += not killed
            print(f"{verdict:>9}  {seconds:5.1f}s  {mutant.name}", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} mutants killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
