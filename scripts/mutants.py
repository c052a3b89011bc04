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
        "                    db.execute(statement)\n"
        '                db.execute(f"PRAGMA user_version',
        '                    db.execute(statement)\n        db.execute(f"PRAGMA user_version',
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
        "search ranks every match, not only the newest 1,000",
        "flaskr/search.py",
        "    ids = ids[:MAX_RANKED]\n",
        "",
        ("tests/test_search.py",),
    ),
    Mutant(
        "search takes the oldest matches",
        "flaskr/search.py",
        '        " ORDER BY rowid DESC LIMIT ?",\n',
        '        " ORDER BY rowid LIMIT ?",\n',
        ("tests/test_search.py", "-k", "sqlite"),
    ),
    Mutant(
        "search takes the oldest matches on PostgreSQL",
        "flaskr/search.py",
        '        " ORDER BY id DESC LIMIT ?",\n',
        '        " ORDER BY id LIMIT ?",\n',
        ("tests/test_search.py", "-k", "postgresql"),
    ),
    Mutant(
        "search ranking reads every matching row",
        "flaskr/search.py",
        "ids[-1], ids[0], MAX_RANK_ROWS)",
        "ids[-1], ids[0], -1)",
        ("tests/test_search.py",),
    ),
    Mutant(
        "search ranks by the commonest words instead of the rarest",
        "flaskr/search.py",
        "sorted(rare, key=counts.get)",
        "sorted(rare, key=counts.get, reverse=True)",
        ("tests/test_search.py",),
    ),
    Mutant(
        "search ranks by words found in most posts too",
        "flaskr/search.py",
        "if counts[term] * 2 <= sample]",
        "]",
        ("tests/test_search.py",),
    ),
    Mutant(
        "search says more than 1,000 match when exactly 1,000 do",
        "flaskr/search.py",
        "more = len(ids) > MAX_RANKED",
        "more = len(ids) >= MAX_RANKED",
        ("tests/test_search.py",),
    ),
    Mutant(
        "search counts the posts of the page, not all matches",
        "flaskr/search.py",
        "matches=len(ids)",
        "matches=len(shown)",
        ("tests/test_search.py",),
    ),
    Mutant(
        "search terms are not quoted",
        "flaskr/search.py",
        """'"{}"'.format(term.replace('"', '""')) for term in terms)""",
        "term for term in terms)",
        ("tests/test_search.py",),
    ),
    Mutant(
        "an uploaded image keeps its metadata",
        "flaskr/uploads.py",
        "        image.info.pop(key, None)\n",
        "        pass\n",
        ("tests/test_uploads.py", "-k", "metadata or comments or dropped"),
    ),
    Mutant(
        "the pixel limit counts one frame of an animation",
        "flaskr/uploads.py",
        "pixels = width * height * frames",
        "pixels = width * height",
        ("tests/test_uploads.py", "-k", "pixel"),
    ),
    Mutant(
        "an image of exactly the byte limit is refused",
        "flaskr/uploads.py",
        "if len(data) > max_bytes:",
        "if len(data) >= max_bytes:",
        ("tests/test_uploads.py", "-k", "size_limit"),
    ),
    Mutant(
        "an animation of exactly the frame limit is refused",
        "flaskr/uploads.py",
        "if frames > max_frames:",
        "if frames >= max_frames:",
        ("tests/test_uploads.py", "-k", "frame"),
    ),
    Mutant(
        "a GIF's frames are counted only up to the limit",
        "flaskr/uploads.py",
        "while frames <= limit:",
        "while frames < limit:",
        ("tests/test_uploads.py", "-k", "frame"),
    ),
    Mutant(
        "bytes between a GIF's blocks end the frame count",
        "flaskr/uploads.py",
        "block = GIF_BLOCK.search(data, pos)",
        "block = GIF_BLOCK.match(data, pos)",
        ("tests/test_uploads.py", "-k", "frame"),
    ),
    Mutant(
        "image re-encodes take no slot",
        "flaskr/uploads.py",
        "        with image_slots.held():\n            return reencode(data)\n",
        "        return reencode(data)\n",
        ("tests/test_uploads.py", "-k", "slot"),
    ),
    Mutant(
        "a storage fault is a 500",
        "flaskr/errors.py",
        "    app.register_error_handler(OSError, handle_storage_error)\n",
        "",
        ("tests/test_faults.py", "-k", "storage"),
    ),
    Mutant(
        "a multi-picture JPEG is stored as such",
        "flaskr/uploads.py",
        'return "JPEG" if image.format == "MPO" else image.format',
        "return image.format",
        ("tests/test_uploads.py", "-k", "multi_picture"),
    ),
    Mutant(
        "an uploaded image is stored under the name its sender gave",
        "flaskr/uploads.py",
        'return f"{secrets.token_hex(16)}.{extension}"',
        "return __import__('flask').request.files['image'].filename",
        ("tests/test_uploads.py", "-k", "traversal"),
    ),
    Mutant(
        "a JPEG's scans are not counted",
        "flaskr/uploads.py",
        "data.count(JPEG_SCAN_MARKER) > JPEG_MAX_SCANS",
        "data.count(JPEG_SCAN_MARKER) > 10**9",
        ("tests/test_uploads.py", "-k", "scans"),
    ),
    Mutant(
        "a JPEG of exactly the most scans is refused",
        "flaskr/uploads.py",
        "data.count(JPEG_SCAN_MARKER) > JPEG_MAX_SCANS",
        "data.count(JPEG_SCAN_MARKER) >= JPEG_MAX_SCANS",
        ("tests/test_uploads.py", "-k", "scans"),
    ),
    Mutant(
        "a GIF frame reaching past the GIF's size is counted at the GIF's size",
        "flaskr/uploads.py",
        "            width, height = max(width, x + w), max(height, y + h)\n",
        "",
        ("tests/test_uploads.py", "-k", "larger"),
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
    Mutant(
        "a draft's page answers everyone",
        "flaskr/blog.py",
        'if post is None or not (post["public"] or is_author):',
        "if post is None:",
        ("tests/test_blog.py", "-k", "draft"),
    ),
    Mutant(
        "drafts listed with the published posts",
        "flaskr/blog.py",
        'PUBLISHED = "p.draft = 0 AND p.created <= CURRENT_TIMESTAMP"',
        'PUBLISHED = "p.draft >= 0 AND p.created <= CURRENT_TIMESTAMP"',
        ("tests/test_blog.py", "-k", "draft or unpublish"),
    ),
    Mutant(
        "scheduled posts listed before their time",
        "flaskr/blog.py",
        'PUBLISHED = "p.draft = 0 AND p.created <= CURRENT_TIMESTAMP"',
        "PUBLISHED = \"p.draft = 0 AND p.created <= '9999-12-31 00:00:00'\"",
        ("tests/test_blog.py", "-k", "scheduling"),
    ),
    Mutant(
        "a tag page lists drafts",
        "flaskr/tags.py",
        " AND p.draft = 0",
        "",
        ("tests/test_blog.py", "-k", "draft or unpublish"),
    ),
    Mutant(
        "search finds drafts",
        "flaskr/search.py",
        "        ids = [post_id for post_id in ids if post_id not in hidden]\n",
        "",
        ("tests/test_blog.py", "-k", "draft or unpublish"),
    ),
    Mutant(
        "cached pages served past the next publication",
        "flaskr/caching.py",
        "return self.next_publication is not None and self.next_publication <= now()",
        "return False",
        ("tests/test_caching.py", "-k", "scheduled or next_publication"),
    ),
    Mutant(
        "a title of spaces accepted",
        "flaskr/blog.py",
        "    if not title.strip():\n",
        "    if not title:\n",
        ("tests/test_blog.py", "-k", "beside"),
    ),
    Mutant(
        "a preview saves the post",
        "flaskr/blog.py",
        'if action == "preview":',
        'if action == "never":',
        ("tests/test_blog.py", "-k", "preview"),
    ),
    Mutant(
        "a chosen image served to anyone",
        "flaskr/uploads.py",
        'if pending and pending["name"] == name:',
        "if True:",
        ("tests/test_uploads.py", "-k", "chosen"),
    ),
    Mutant(
        "a suspension leaves the user's sessions running",
        "flaskr/admin.py",
        '        end_other_sessions(db, id)\n    log_action("suspended"',
        '    log_action("suspended"',
        ("tests/test_admin.py", "-k", "suspension"),
    ),
    Mutant(
        "a password change leaves the other sessions running",
        "flaskr/account.py",
        '        end_other_sessions(db, user["id"])\n    current_app.logger.info("password changed',
        '    current_app.logger.info("password changed',
        ("tests/test_account.py", "-k", "password_change"),
    ),
    Mutant(
        "a suspended user still logs in",
        "flaskr/auth.py",
        'if correct and user["suspended"] is not None:',
        "if False:",
        ("tests/test_admin.py", "-k", "suspension"),
    ),
    Mutant(
        "a one-time link works more than once",
        "flaskr/admin.py",
        'db.execute("DELETE FROM one_time_link WHERE token_hash = ?", (hash_token(token),))',
        "None",
        ("tests/test_account.py", "-k", "reset_link or invite"),
    ),
    Mutant(
        "an expired one-time link still works",
        "flaskr/admin.py",
        " AND l.expires > CURRENT_TIMESTAMP",
        "",
        ("tests/test_account.py", "-k", "expires"),
    ),
    Mutant(
        "an invite is not spent by the registration it allowed",
        "flaskr/auth.py",
        "if invited and use_link(db, INVITE, token) is None:",
        "if False:",
        ("tests/test_account.py", "-k", "invite"),
    ),
    Mutant(
        "an author reaches the admin actions",
        "flaskr/admin.py",
        "        if not is_admin():",
        "        if g.user is None:",
        ("tests/test_admin.py", "tests/test_hostile.py", "-k", "author"),
    ),
    Mutant(
        "a deleted post's image stays in the database",
        "flaskr/blog.py",
        '        delete_image(db, post["image"])\n',
        "",
        ("tests/test_uploads.py", "-k", "deleting"),
    ),
    Mutant(
        "a replaced image stays in the database",
        "flaskr/blog.py",
        "            delete_image(db, old_image)\n",
        "            pass\n",
        ("tests/test_uploads.py", "-k", "replaces"),
    ),
    Mutant(
        "the generated key is not read back after its insert",
        "flaskr/settings.py",
        '        (key,) = db.execute("SELECT value FROM signing_key WHERE id = 1").fetchone()\n',
        "",
        ("tests/test_factory.py", "-k", "agree"),
    ),
    Mutant(
        "PostgreSQL writers do not wait for each other",
        "flaskr/postgres.py",
        '        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))\n',
        "",
        ("tests/test_postgresql.py", "-k", "lock_too_long or many_servers"),
    ),
    Mutant(
        "a change leaves other servers' page caches as they were",
        "flaskr/migrations/postgresql/0009_schema.sql",
        "  UPDATE site_version SET version = version + 1 WHERE id = 1;\n",
        "",
        ("tests/test_postgresql.py", "-k", "change_through_one_server"),
    ),
    Mutant(
        "copy-db fills a target that already holds a site",
        "flaskr/copydb.py",
        "    if held:\n",
        "    if False:\n",
        ("tests/test_copydb.py", "-k", "not_empty"),
    ),
    Mutant(
        "copy-db and import leave PostgreSQL's sequences behind the copied ids",
        "flaskr/db.py",
        'if backend(db) != "postgresql":',
        "if True:",
        (
            "tests/test_copydb.py",
            "tests/test_portability.py",
            "-k",
            "writing_on_the_copy or works_as_before",
        ),
    ),
    Mutant(
        "shared parts of pages outlive a commit",
        "flaskr/caching.py",
        "            self._forget_older_shared()\n            entry = self.shared.get(key)\n",
        "            entry = self.shared.get(key)\n",
        ("tests/test_blog.py", "tests/test_caching.py", "-k", "card or shared"),
    ),
    Mutant(
        "a shared part made before a commit is kept",
        "flaskr/caching.py",
        "                return\n            self._forget_older_shared()\n            if key in",
        "                pass\n            self._forget_older_shared()\n            if key in",
        ("tests/test_caching.py", "-k", "shared"),
    ),
    Mutant(
        "the reader's own Edit link kept in the shared card",
        "flaskr/blog.py",
        ").partition(EDIT_LINK)",
        ").replace(EDIT_LINK, edit_link(post)).partition(EDIT_LINK)",
        ("tests/test_blog.py", "-k", "card"),
    ),
    Mutant(
        "a session check kept past the second it was made in",
        "flaskr/auth.py",
        "user_id, int(time.time()))",
        "user_id, 0)",
        ("tests/test_auth.py", "-k", "lifetime"),
    ),
    Mutant(
        "a thread's watch forgets the version it saw",
        "flaskr/caching.py",
        "                    watch.seen = version\n",
        "",
        ("tests/test_caching.py", "-k", "memory"),
    ),
    Mutant(
        "templates' paths shared between script roots",
        "flaskr/caching.py",
        'key = ("path", request.script_root, endpoint, *sorted(values.items()))',
        'key = ("path", endpoint, *sorted(values.items()))',
        ("tests/test_caching.py", "-k", "paths"),
    ),
    Mutant(
        "a card is kept by its post's id and text alone, not by its counts",
        "flaskr/blog.py",
        '"username", "display_name",\n    "likes", "comments",\n',
        '"username", "display_name",\n',
        ("tests/test_blog.py", "-k", "card"),
    ),
    Mutant(
        "a page cache check trusts the wal-index without comparing it",
        "flaskr/caching.py",
        "return self.seen_header is not None and self.header() == self.seen_header",
        "return self.seen_header is not None",
        ("tests/test_caching.py", "-k", "until_someone_commits"),
    ),
    Mutant(
        "a wal-index header read while it is rewritten is taken as it is",
        "flaskr/caching.py",
        "return first if first == both[WAL_INDEX_HEADER_BYTES:] else None",
        "return first",
        ("tests/test_caching.py", "-k", "rewritten"),
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
