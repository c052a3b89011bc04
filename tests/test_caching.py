import ctypes
import os
import re
import sqlite3
import struct
import time
from datetime import UTC, datetime, timedelta

import pytest
from flask import Response, render_template_string, template_rendered, url_for
from listing import add_posts

from flaskr import caching
from flaskr.caching import STATIC_MAX_AGE, PageCache, Watch, entry_size, find_wal_header
from flaskr.db import get_db
from flaskr.pagination import Page
from flaskr.tags import save_tags


def test_anonymous_page_revalidates_with_etag(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    etag = response.headers["ETag"]

    again = client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag


def test_changed_page_gets_a_new_etag(app, client, auth):
    etag = client.get("/").headers["ETag"]
    auth.login()
    client.post("/create", data={"title": "fresh news", "body": ""})
    auth.logout()
    response = client.get("/", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert b"fresh news" in response.data
    assert response.headers["ETag"] != etag


def test_head_is_conditional_too(client):
    etag = client.get("/").headers["ETag"]
    response = client.head("/")
    assert response.status_code == 200
    assert response.headers["ETag"] == etag
    assert client.head("/", headers={"If-None-Match": etag}).status_code == 304


def test_logged_in_pages_are_never_stored(client, auth):
    etag = client.get("/").headers["ETag"]
    auth.login()
    response = client.get("/", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert b"Log Out" in response.data
    assert "ETag" not in response.headers
    assert response.cache_control.private
    assert response.cache_control.no_store
    assert "public" not in response.headers["Cache-Control"]


def test_only_successful_html_pages_get_an_etag(client):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "ETag" not in missing.headers
    assert "ETag" not in client.get("/healthz").headers
    assert "ETag" not in client.post("/auth/login", data={}).headers


def test_responses_with_their_own_caching_are_left_alone(app, client):
    @app.route("/own-etag")
    def own_etag():
        response = Response("feed", mimetype="text/html")
        response.set_etag("feed-1")
        return response

    @app.route("/streamed")
    def streamed():
        return Response(iter(["a", "b"]), mimetype="text/html")

    response = client.get("/own-etag")
    assert response.headers["ETag"] == '"feed-1"'
    assert "Cache-Control" not in response.headers

    response = client.get("/streamed")
    assert response.data == b"ab"
    assert "ETag" not in response.headers


def test_static_urls_carry_their_content_version(app, client):
    page = client.get("/").get_data(as_text=True)
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    assert {url.split("?")[0] for url in urls} == {
        "/static/style.css",
        "/static/app.js",
        "/static/favicon.svg",
    }
    versions = app.extensions["static_versions"]
    for url in urls:
        name = url.split("?")[0].removeprefix("/static/")
        assert url.endswith(f"?v={versions[name]}")
    with app.test_request_context():
        assert url_for("static", filename="missing.css") == "/static/missing.css"


def test_versioned_static_files_are_immutable(app, client):
    version = app.extensions["static_versions"]["style.css"]
    response = client.get(f"/static/style.css?v={version}")
    assert response.status_code == 200
    assert response.cache_control.public
    assert response.cache_control.max_age == STATIC_MAX_AGE
    assert response.cache_control.immutable
    assert not response.cache_control.no_cache
    response.close()


def test_unversioned_static_files_revalidate(client):
    for url in ("/static/style.css", "/static/style.css?v=stale"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.cache_control.no_cache
        assert not response.cache_control.immutable
        etag = response.headers["ETag"]
        response.close()
        with client.get(url, headers={"If-None-Match": etag}) as again:
            assert again.status_code == 304
    assert client.get("/static/missing.css").status_code == 404


@pytest.fixture
def renders(app):
    """The names of the templates rendered, in order."""
    rendered = []

    def record(sender, template, context, **extra):
        rendered.append(template.name)

    template_rendered.connect(record, app)
    yield rendered
    template_rendered.disconnect(record, app)


def commit_elsewhere(database, sql="DELETE FROM comment"):
    """Commit sql through a connection of its own, as another process would."""
    other = sqlite3.connect(database)
    other.execute(sql)
    other.commit()
    other.close()


@pytest.mark.sqlite_only
def test_visitors_pages_come_from_memory_until_the_data_changes(app, client, renders):
    first = client.get("/")
    second = client.get("/")
    assert renders == ["blog/index.html"]
    assert second.data == first.data
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]

    # Another process writes straight to the database: the next visitor sees it.
    commit_elsewhere(
        app.config["DATABASE"],
        "INSERT INTO post (title, body, author_id) VALUES ('from elsewhere', '', 2)",
    )
    third = client.get("/")
    assert renders == ["blog/index.html", "blog/index.html"]
    assert b"from elsewhere" in third.data


def test_pages_are_cached_per_url(client, renders):
    client.get("/")
    client.get("/1/test-title")
    client.get("/1/test-title")
    client.get("/?page=1")
    assert renders == ["blog/index.html", "blog/detail.html", "blog/index.html"]


def test_logged_in_users_never_get_cached_pages(client, auth, renders):
    client.get("/")
    auth.login()
    page = client.get("/")
    assert b"Log Out" in page.data
    assert renders == ["blog/index.html", "blog/index.html"]
    auth.logout()
    assert b"Log In" in client.get("/").data


def test_a_waiting_message_is_never_cached(client, renders):
    client.get("/")
    with client.session_transaction() as s:
        s["_flashes"] = [("message", "just for you")]
    assert b"just for you" in client.get("/").data
    assert b"just for you" not in client.get("/").data


def test_error_pages_are_not_cached(client, renders):
    client.get("/missing")
    client.get("/missing")
    assert renders == ["errors/error.html", "errors/error.html"]


def page_of(size):
    """A cached page whose body is size bytes, with one header."""
    return (b"x" * size, [("Content-Type", "text/html; charset=utf-8")])


@pytest.mark.sqlite_only
def test_the_cache_keeps_the_most_recently_used_pages_within_its_bytes(app):
    cache = PageCache(app.config["DATABASE"], 64_000)
    generation = cache.current_generation()
    entry = entry_size(("/00",), page_of(2000))
    assert entry <= cache.largest
    for number in range(40):
        if number >= 2:
            cache.get(("/01",))  # used again and again: kept, unlike the older ones around it
        cache.put((f"/{number:02d}",), generation, page_of(2000))
        assert cache.size <= cache.budget
        assert cache.size == sum(entry_size(key, page) for key, page in cache.pages.items())
    kept = cache.budget // entry
    assert 2 < kept < 40
    newest = [(f"/{number:02d}",) for number in range(41 - kept, 39)]
    assert list(cache.pages) == [*newest, ("/01",), ("/39",)]


@pytest.mark.sqlite_only
def test_a_page_kept_again_replaces_its_bytes(app):
    cache = PageCache(app.config["DATABASE"], 64_000)
    generation = cache.current_generation()
    cache.put(("/",), generation, page_of(2000))
    cache.put(("/",), generation, page_of(100))
    assert cache.get(("/",)) == page_of(100)
    assert cache.size == entry_size(("/",), page_of(100))


def test_a_page_over_a_sixteenth_of_the_budget_is_served_but_not_kept(make_app, app):
    with app.app_context():
        get_db().execute("UPDATE post SET body = ?", ("big " * 5000,))
    small = make_app(PAGE_CACHE_BYTES=16 * 20_000)
    client = small.test_client()
    renders = []

    def record(sender, template, context, **extra):
        renders.append(template.name)

    with template_rendered.connected_to(record, small):
        for _ in range(2):
            response = client.get("/1/test-title")
            assert response.status_code == 200
            assert b"big big" in response.data
            assert len(response.data) > 20_000
        assert renders == ["blog/detail.html", "blog/detail.html"]
        assert not small.extensions["page_cache"].pages
        # A smaller page still is.
        client.get("/search?q=absent")
        client.get("/search?q=absent")
    assert renders.count("search/search.html") == 1
    assert len(small.extensions["page_cache"].pages) == 1


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/feed.atom", "feeds/atom.xml"),
        ("/", "blog/index.html"),
        ("/1/test-title", "blog/detail.html"),
        ("/tag/none", "errors/error.html"),
        ("/search?q=test", "search/search.html"),
        ("/user/test", "blog/author.html"),
    ],
)
def test_made_up_query_arguments_make_no_new_entries(app, client, renders, path, template):
    joiner = "&" if "?" in path else "?"
    pages = {client.get(f"{path}{joiner}r={r}").data for r in range(50)}
    assert len(pages) == 1
    cache = app.extensions["page_cache"]
    if template == "errors/error.html":
        assert renders == [template] * 50  # errors are never kept
    else:
        assert renders == [template]
        assert len(cache.pages) == 1
        assert client.get(path).data in pages
        assert renders == [template]


def test_the_arguments_a_page_reads_make_their_own_entries(app, client, renders):
    add_posts(app, 11)
    client.get("/")
    client.get("/?page=2")
    client.get("/?page=2&r=1")
    client.get("/search?q=post")
    client.get("/search?q=test")
    client.get("/search?q=post&page=2")
    assert renders == ["blog/index.html"] * 2 + ["search/search.html"] * 3
    assert b"post 6" in client.get("/?page=2&r=2").data
    assert len(app.extensions["page_cache"].pages) == 5


def test_a_flood_of_made_up_urls_stays_within_the_budget(make_app, app):
    with app.app_context():
        get_db().execute("UPDATE post SET body = ?", ('"' * 100_000,))
    client = make_app(PAGE_CACHE_BYTES=16 * 1024 * 1024).test_client()
    cache = client.application.extensions["page_cache"]
    for r in range(30):
        assert client.get(f"/1/test-title?r={r}").status_code == 200
        assert client.get(f"/tag/none?r={r}").status_code == 404
        assert cache.size <= cache.budget
    assert [key[0] for key in cache.pages] == ["http://localhost/1/test-title"]


def test_pages_are_kept_per_host(client):
    first = client.get("/feed.atom", base_url="http://one.example")
    second = client.get("/feed.atom", base_url="http://two.example")
    assert b"http://one.example/1" in first.data
    assert b"http://two.example/1" in second.data
    assert b"one.example" not in second.data


def test_the_cache_can_be_switched_off(make_app, app):
    client = make_app(PAGE_CACHE_BYTES=0).test_client()
    assert client.get("/").status_code == 200
    assert "page_cache" not in client.application.extensions


@pytest.mark.sqlite_only
def test_a_page_rendered_before_a_change_is_not_kept(app):
    cache = PageCache(app.config["DATABASE"], 16_000)
    generation = cache.current_generation()
    commit_elsewhere(app.config["DATABASE"], "DELETE FROM post")
    assert cache.current_generation() == generation + 1
    cache.put(("http://localhost/",), generation, page_of(10))
    assert cache.get(("http://localhost/",)) is None
    assert cache.size == 0


class CountingConnection:
    """A watch's connection that notes every statement it runs."""

    def __init__(self, connection):
        self.connection = connection
        self.statements = []

    def execute(self, sql, *args):
        self.statements.append(sql)
        return self.connection.execute(sql, *args)

    def close(self):
        self.connection.close()


@pytest.fixture
def watched(monkeypatch):
    """The statements of every watch the page cache opens, one list per watch."""
    statements = []
    real_open_watch = caching.open_watch

    def open_watch(database):
        connection = CountingConnection(real_open_watch(database))
        statements.append(connection.statements)
        return connection

    monkeypatch.setattr(caching, "open_watch", open_watch)
    return statements


@pytest.mark.sqlite_only
def test_checks_read_nothing_from_the_database_until_someone_commits(app, watched):
    cache = PageCache(app.config["DATABASE"], 16_000)
    generation = cache.current_generation()
    assert cache.current_generation() == generation  # notes the wal-index with the version
    (statements,) = watched
    count = len(statements)
    for _ in range(5):
        assert cache.current_generation() == generation
    assert len(statements) == count

    commit_elsewhere(app.config["DATABASE"])
    assert cache.current_generation() == generation + 1
    assert len(statements) > count
    assert cache.current_generation() == generation + 1


@pytest.mark.sqlite_only
def test_a_database_outside_wal_mode_is_watched_by_its_version(app, watched):
    database = app.config["DATABASE"]
    connection = sqlite3.connect(database)
    assert connection.execute("PRAGMA journal_mode = DELETE").fetchone() == ("delete",)
    connection.close()
    cache = PageCache(database, 16_000)
    generation = cache.current_generation()
    assert cache.current_generation() == generation
    assert cache.local.watch.wal_header is None
    (statements,) = watched
    count = len(statements)
    assert cache.current_generation() == generation
    assert len(statements) > count  # the version, read again

    commit_elsewhere(database)
    assert cache.current_generation() == generation + 1


def test_a_wal_index_header_being_rewritten_counts_as_a_change():
    memory = ctypes.create_string_buffer(b"a" * 96)
    watch = Watch()
    watch.wal_header = ctypes.addressof(memory)
    assert watch.header() == b"a" * 48
    watch.seen_header = b"a" * 48
    assert watch.unchanged()
    # A commit rewrites the second copy first: until both agree, the version is read.
    memory[48:96] = b"b" * 48
    assert watch.header() is None
    assert not watch.unchanged()


@pytest.mark.sqlite_only
def test_the_wal_index_header_is_sqlites_own_mapping(app, tmp_path, monkeypatch):
    database = app.config["DATABASE"]
    connection = sqlite3.connect(database)
    connection.execute("SELECT COUNT(*) FROM post").fetchone()
    address = find_wal_header(database, connection)
    header = ctypes.string_at(address, 48)
    assert struct.unpack("=I", header[:4]) == (3007000,)  # the wal-index format's version
    commit_elsewhere(database)
    assert ctypes.string_at(address, 48) != header
    assert find_wal_header(str(tmp_path / "other.sqlite"), connection) is None
    monkeypatch.setattr(caching, "PROCESS_MAPS", str(tmp_path / "no-such-listing"))
    assert find_wal_header(database, connection) is None  # not on Linux
    connection.close()


@pytest.mark.sqlite_only
def test_no_database_means_no_cache(make_app, tmp_path):
    missing = tmp_path / "not-yet.sqlite"
    assert PageCache(str(missing), 10).current_generation() is None
    assert not missing.exists()
    app = make_app(DATABASE=str(missing))
    with pytest.raises(sqlite3.OperationalError):
        app.test_client().get("/")  # the page itself fails: init-db was never run
    assert not app.extensions["page_cache"].pages


def test_unreadable_database_means_no_cache(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    cache = PageCache(str(garbage), 10)
    assert cache.current_generation() is None
    assert cache.current_generation() is None


def test_feeds_from_the_cache_still_answer_conditional_requests(client):
    first = client.get("/feed.atom")
    cached = client.get("/feed.atom")
    assert cached.data == first.data
    assert cached.headers["ETag"] == first.headers["ETag"]
    assert cached.mimetype == "application/atom+xml"
    again = client.get("/feed.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_plain_routes_do_not_touch_the_cache(app, client):
    client.get("/hello")
    client.get("/healthz")
    assert not app.extensions["page_cache"].pages


@pytest.mark.sqlite_only
def test_a_not_modified_answer_is_not_kept(app, client):
    etag = client.get("/feed.atom").headers["ETag"]
    # A change that leaves the feed as it was still empties the cache.
    with app.app_context():
        get_db().execute("INSERT INTO login_failure (username, address) VALUES ('x', 'y')")
    assert client.get("/feed.atom", headers={"If-None-Match": etag}).status_code == 304
    assert not app.extensions["page_cache"].pages
    assert client.get("/feed.atom").status_code == 200


@pytest.mark.sqlite_only
def test_no_watch_is_opened_while_the_database_file_is_read_only(app, client, renders, monkeypatch):
    # A watch opened now would keep the process's writers read-only after the file is
    # writable again (SQLite shares its index of the write-ahead log between them).
    path = app.config["DATABASE"]
    real_access = os.access

    def access(path, mode):  # as the file's owner sees it: root ignores modes
        if mode == os.W_OK and os.path.exists(path):
            return bool(os.stat(path).st_mode & 0o200)
        return real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    cache = app.extensions["page_cache"]
    os.chmod(path, 0o444)
    try:
        assert client.get("/").status_code == 200
        assert client.get("/").status_code == 200
        assert cache.watch is None
        assert renders == ["blog/index.html"] * 2
    finally:
        os.chmod(path, 0o644)
    client.get("/")
    client.get("/")
    assert cache.watch is not None
    assert renders == ["blog/index.html"] * 3


def test_a_scheduled_post_appears_on_cached_pages_at_its_time(app, client):
    # Two seconds ahead, to the second as stored, so that the pages below are made before.
    due = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    with app.app_context():
        db = get_db()
        db.execute(
            "INSERT INTO post (title, body, author_id, created) VALUES ('due soon', '', 1, ?)",
            (due.strftime("%Y-%m-%d %H:%M:%S"),),
        )
        save_tags(db, 2, ["desk"])
        save_tags(db, 1, ["desk"])
    paths = ("/", "/tag/desk", "/search?q=due", "/feed.atom", "/user/test")
    before = [client.get(path).data for path in paths]
    assert not [page for page in before if b"/2/due-soon" in page]
    # Served from the cache while the post is still to come.
    assert [client.get(path).data for path in paths] == before
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.05)
    # No write since: the cache itself knows the time has come.
    assert all(b"/2/due-soon" in client.get(path).data for path in paths)


def test_the_cache_reads_the_next_publication_at_each_generation(app, client, monkeypatch):
    client.get("/")
    cache = app.extensions["page_cache"]
    assert cache.next_publication is None
    with app.app_context():
        get_db().execute(
            "INSERT INTO post (title, body, author_id, created)"
            " VALUES ('far', '', 1, '2999-01-01 00:00:00')"
        )
    client.get("/")
    assert cache.next_publication == "2999-01-01 00:00:00"
    generation = cache.generation
    client.get("/")
    assert cache.generation == generation
    # Once the clock passes it, a new generation starts without any write.
    monkeypatch.setattr(caching, "now", lambda: "2999-01-01 00:00:00")
    client.get("/")
    assert cache.generation == generation + 1


def test_shared_values_are_made_once_until_the_data_changes(app, query):
    made = []

    def make():
        made.append(1)
        return ["value", len(made)]

    with app.test_request_context("/"):
        assert caching.shared(("thing",), make) == ["value", 1]
    with app.test_request_context("/"):
        assert caching.shared(("thing",), make) == ["value", 1]
        assert caching.shared(("other thing",), make) == ["value", 2]
    query("UPDATE post SET title = 'changed' WHERE id = 1")
    with app.test_request_context("/"):
        assert caching.shared(("thing",), make) == ["value", 3]
    assert len(made) == 3


def test_shared_values_are_not_kept_with_the_cache_off_or_outside_a_request(make_app, app):
    made = []
    uncached = make_app(PAGE_CACHE_BYTES=0)
    for each in (uncached, app):
        context = each.test_request_context("/") if each is uncached else each.app_context()
        with context:
            caching.shared(("thing",), lambda: made.append(1))
            caching.shared(("thing",), lambda: made.append(1))
    assert len(made) == 4


def test_a_shared_value_made_before_a_change_is_not_kept(app):
    cache = app.extensions["page_cache"]
    generation = cache.current_generation()
    with app.app_context():
        get_db().execute("UPDATE post SET title = 'changed' WHERE id = 1")
    assert cache.current_generation() == generation + 1
    cache.put_shared(("old",), generation, "stale", 100)
    assert cache.get_shared(("old",)) is None
    cache.put_shared(("new",), generation + 1, "fresh", 100)
    assert cache.get_shared(("new",)) == ("fresh",)


def test_shared_values_stay_within_a_quarter_of_the_budget(app):
    cache = PageCache(app.config["DATABASE"], 16_000)
    generation = cache.current_generation()
    for n in range(20):
        cache.put_shared((n,), generation, n, 900)
        assert cache.shared_size <= 4_000
    assert list(cache.shared) == [(16,), (17,), (18,), (19,)]
    cache.put_shared((19,), generation, "again", 500)
    assert cache.get_shared((19,)) == ("again",)
    assert cache.shared_size == 3 * 900 + 500
    cache.put_shared(("huge",), generation, "x", 1_001)
    assert cache.get_shared(("huge",)) is None


def test_value_sizes_count_their_texts(app):
    page = caching.value_size(Page([{"title": "t" * 1000}], 1, False, False))
    assert page > 1000
    with app.app_context():
        row = get_db().execute("SELECT title, body FROM post").fetchone()
    assert caching.value_size(row) >= len("test title") + len("test\nbody")
    assert caching.value_size(None) == caching.value_size(7)


def test_templates_paths_are_the_paths_url_for_makes(app):
    app.extensions["remembered"] = remembered = caching.Remembered(16 * 600)
    template = (
        "{{ url_for('blog.tag', name='a b') }} {{ url_for('static', filename='style.css') }}"
        " {{ url_for('index', page=[2]) }} {{ url_for('index', _external=True) }}"
        " {{ url_for('blog.author', username='x', page=2) }} {{ url_for('.index') }}"
    )
    for script_root in ("", "/blog"):
        with app.test_request_context("/", base_url=f"http://localhost{script_root}/"):
            expected = " ".join(
                [
                    url_for("blog.tag", name="a b"),
                    url_for("static", filename="style.css"),
                    url_for("index", page=[2]),
                    url_for("index", _external=True),
                    url_for("blog.author", username="x", page=2),
                    url_for("blog.index"),
                ]
            )
            assert expected.startswith(f"{script_root}/tag/a%20b ")
            for _ in range(2):
                assert render_template_string(template) == expected
    assert 0 < remembered.size <= remembered.budget


def test_remembered_values_stay_within_their_budget(app):
    remembered = caching.Remembered(16_000)
    for n in range(20):
        remembered.put((n,), n, 900)
        assert remembered.size <= 16_000
    assert list(remembered.values) == [(n,) for n in range(3, 20)]
    remembered.put((19,), "again", 500)
    assert remembered.get((19,)) == ("again",)
    assert remembered.size == 16 * 900 + 500
    remembered.put(("huge",), "x", 1_001)
    assert remembered.get(("huge",)) is None
    assert remembered.get((3,)) == (3,)
