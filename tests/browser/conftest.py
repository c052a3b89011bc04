"""Browser fixtures: Flaskr served by waitress in a subprocess, one Chromium, a page per test.

Chromium is Debian's /usr/bin/chromium, never a downloaded browser. In CI (CI=true) a missing
browser fails these tests; elsewhere it skips them with the command that installs it.
"""

import io
import os
import re
import sqlite3
import uuid
from pathlib import Path

import pytest
from live import FAST_HASH, Server
from PIL import Image
from playwright.sync_api import sync_playwright

HERE = Path(__file__).parent
CHROMIUM = "/usr/bin/chromium"
# Headless, as root, and quiet: no background connections this closed network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
# Every wait in a browser test is bounded by this (milliseconds).
ACTION_TIMEOUT_MS = 10_000


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark every test in this folder `browser`, so `-m "not browser"` leaves them out."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


def in_ci():
    return os.environ.get("CI", "").lower() in ("true", "1")


def require_chromium():
    """Fail in CI, skip elsewhere, when the browser is missing: never skip silently in CI."""
    if os.access(CHROMIUM, os.X_OK):
        return
    message = (
        f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium`"
        " (as root) to run the browser tests."
    )
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class BrowserServer:
    """The running app: its base URL and read access to its database."""

    def __init__(self, url, database):
        self.url = url
        self.database = database

    def query(self, sql, params=()):
        """Run a read-only query against the app's database and return all rows."""
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def count_posts(self, title):
        return self.query("SELECT COUNT(*) FROM post WHERE title = ?", (title,))[0][0]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """Serve a fresh Flaskr instance on 127.0.0.1 for the whole session."""
    instance = tmp_path_factory.mktemp("browser-instance")
    database = instance / "flaskr.sqlite"
    env = {name: value for name, value in os.environ.items() if not name.startswith("FLASKR_")}
    env.update(
        FLASKR_INSTANCE_PATH=str(instance),
        FLASKR_DATABASE=str(database),
        FLASKR_PASSWORD_HASH_METHOD=FAST_HASH,
        # Every test registers its users from 127.0.0.1 on this one server.
        FLASKR_REGISTRATIONS_PER_ADDRESS="100000",
    )
    live = Server(instance, env)
    try:
        yield BrowserServer(live.url, database)
    finally:
        live.stop()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, server):
    """Return a factory of pages, each in its own context (own cookies), closed after the test."""
    contexts = []

    def make(**options):
        options.setdefault("base_url", server.url)
        context = browser.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """A fresh page with its own cookies."""
    return new_page()


class Flows:
    """What people do on the site, through the real pages (as the unit tests' `auth` fixture)."""

    password = PASSWORD

    @staticmethod
    def unique_name(prefix="u"):
        """A username (or title) no other test uses."""
        return f"{prefix}{uuid.uuid4().hex[:12]}"

    @staticmethod
    def png_file(name="picture.png", size=(64, 48), color=(40, 120, 200)):
        """A small PNG made on the spot, as Playwright's set_input_files takes a file."""
        out = io.BytesIO()
        Image.new("RGB", size, color).save(out, format="PNG")
        return {"name": name, "mimeType": "image/png", "buffer": out.getvalue()}

    def register(self, page, username, password=PASSWORD):
        page.goto("/auth/register")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Register").click()
        page.wait_for_url("**/auth/login")

    def log_in(self, page, username, password=PASSWORD):
        page.goto("/auth/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log In").click()
        page.wait_for_url("/")

    def sign_up(self, page, username=None):
        """Register a new user (a fresh name unless given) and log in; return the username.

        Through the page's own cookie jar but without the forms, for speed: the forms
        themselves are tested in test_flows.
        """
        username = username or self.unique_name()
        form = {"username": username, "password": self.password}
        for path, expected in (("/auth/register", "/auth/login"), ("/auth/login", "/")):
            response = page.context.request.post(path, form=form, max_redirects=0)
            assert response.headers.get("location") == expected, f"{path}: {response.status}"
        page.goto("/")
        return username

    def create_post(self, page, title, body="", tags="", image=None):
        """Write a post through the form; return its id, read from its Edit link.

        image is a file for the Image field, as png_file makes.
        """
        page.goto("/create")
        page.get_by_label("Title").fill(title)
        page.get_by_label("Body").fill(body)
        if tags:
            page.get_by_label("Tags").fill(tags)
        if image:
            page.get_by_label("Image", exact=True).set_input_files(image)
        page.get_by_role("button", name="Publish", exact=True).click()
        # The writer lands on the post's own page; callers go on from the index.
        page.wait_for_url(re.compile(r"/\d+/[^/]+$"))
        post_id = int(page.url.rsplit("/", 2)[1])
        page.goto("/")
        return post_id

    def make_admin(self, username):
        """Give a user the admin role, as the owner does once with `set-role`."""
        db = sqlite3.connect(self.database, timeout=10)
        try:
            with db:
                db.execute("UPDATE user SET role = 'admin' WHERE username = ?", (username,))
        finally:
            db.close()

    def post_id(self, page, title):
        """The id of the post with this title on the current list page, from its Edit link."""
        card = page.locator("article.post").filter(has_text=title).first
        href = card.get_by_role("link", name="Edit", exact=True).get_attribute("href")
        return int(href.strip("/").split("/")[0])


@pytest.fixture
def flows(server):
    flows = Flows()
    flows.database = server.database
    return flows
