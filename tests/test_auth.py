import logging
import sqlite3
import threading
import time
from contextlib import contextmanager, nullcontext
from datetime import timedelta

import pytest
from flask import g, session
from werkzeug.security import check_password_hash, generate_password_hash

from flaskr import auth as flaskr_auth
from flaskr.auth import is_local_path, needs_rehash
from flaskr.db import get_db


def stored_hash(query, username):
    return query("SELECT password FROM user WHERE username = ?", (username,))[0][0]


def test_register(client, app, query):
    assert client.get("/auth/register").status_code == 200

    response = client.post(
        "/auth/register", data={"username": "alice", "password": "correct horse"}
    )
    assert response.headers["Location"] == "/auth/login"
    assert stored_hash(query, "alice").startswith("scrypt:")


@pytest.mark.parametrize(
    ("username", "password", "message"),
    (
        ("", "", b"Username is required."),
        ("a", "", b"Password is required."),
        ("test", "test", b"User test is already registered."),
        ("TEST", "long enough password", b"User TEST is already registered."),
        ("a", "a", b"Password must be at least 8 characters."),
        ("a", "1234567", b"Password must be at least 8 characters."),
        ("a", "x" * 1025, b"Password must be at most 1024 characters."),
        ("longname", "LongName", b"Password must not be the same as the username."),
        ("has space", "long enough", b"Username must be 1 to 32 letters"),
        ("x" * 33, "long enough", b"Username must be 1 to 32 letters"),
        ("<script>", "long enough", b"Username must be 1 to 32 letters"),
    ),
)
def test_register_validate_input(client, count, username, password, message):
    response = client.post("/auth/register", data={"username": username, "password": password})
    assert response.status_code == 400
    assert message in response.data
    assert count("user") == 2


def test_register_accepts_the_allowed_characters(client, count):
    response = client.post(
        "/auth/register", data={"username": "A.b-c_9" + "x" * 25, "password": "9 lives of a cat"}
    )
    assert response.status_code == 302
    assert count("user") == 3


def test_register_race_for_a_name_reports_it_taken(client, monkeypatch, count):
    # Another request registers "test" between the check and the insert.
    monkeypatch.setattr(flaskr_auth, "find_user", lambda username: None)
    response = client.post("/auth/register", data={"username": "test", "password": "long enough"})
    assert b"User test is already registered." in response.data
    assert count("user") == 2


def test_registration_can_be_closed(make_app):
    client = make_app(REGISTRATION_OPEN=False).test_client()
    assert client.get("/auth/register").status_code == 403
    response = client.post("/auth/register", data={"username": "x", "password": "long enough"})
    assert response.status_code == 403
    assert b"Registration is closed" in response.data
    assert b"Register" not in client.get("/auth/login").data


def test_login(client, auth):
    assert client.get("/auth/login").status_code == 200
    response = auth.login()
    assert response.headers["Location"] == "/"

    with client:
        client.get("/")
        assert session["user_id"] == 1
        assert g.user["username"] == "test"


@pytest.mark.parametrize(
    ("username", "password", "message"),
    (("a", "test", b"Incorrect username."), ("test", "a", b"Incorrect password.")),
)
def test_login_validate_input(auth, username, password, message):
    response = auth.login(username, password)
    assert response.status_code == 400
    assert message in response.data


def test_login_ignores_username_case(auth):
    assert auth.login("TeSt", "test").headers["Location"] == "/"


def test_unknown_username_costs_one_hash_check(auth, monkeypatch):
    checked = []
    real_check = flaskr_auth.check_password_hash
    monkeypatch.setattr(
        flaskr_auth,
        "check_password_hash",
        lambda stored, password: checked.append(stored) or real_check(stored, password),
    )
    auth.login("nobody", "whatever")
    auth.login("nobody-else", "whatever")
    assert len(checked) == 2
    assert all(h.startswith("scrypt:16384:8:1$") for h in checked)


def test_old_hash_is_upgraded_at_login(app, auth, query):
    assert stored_hash(query, "test").startswith("pbkdf2:sha256:50000$")
    auth.login()
    upgraded = stored_hash(query, "test")
    assert upgraded.startswith("scrypt:16384:8:1$")
    auth.logout()
    assert auth.login().headers["Location"] == "/"
    assert stored_hash(query, "test") == upgraded


def test_default_hash_meets_the_owasp_minimum(tmp_path):
    from flaskr import create_app

    method = create_app({"TESTING": True}).config["PASSWORD_HASH_METHOD"]
    name, n, r, p = method.split(":")
    assert name == "scrypt"
    assert int(n) >= 2**17 and int(r) >= 8 and int(p) >= 1


@pytest.mark.parametrize(
    ("stored", "expected"),
    (
        ("pbkdf2:sha256:50000$salt$hash", True),
        ("scrypt:8192:8:1$salt$hash", True),
        ("scrypt:16384:4:1$salt$hash", True),
        ("scrypt:16384:8:1$salt$hash", False),
        ("scrypt:32768:8:1$salt$hash", False),
        ("scrypt$salt$hash", True),
    ),
)
def test_needs_rehash(app, stored, expected):
    with app.app_context():
        assert needs_rehash(stored) is expected


def test_login_returns_to_where_the_user_was_going(client, auth):
    response = client.get("/create")
    assert response.headers["Location"] == "/auth/login"
    assert auth.login().headers["Location"] == "/create"


def test_return_path_keeps_its_query(client, auth):
    client.get("/1/update?from=index")
    assert auth.login().headers["Location"] == "/1/update?from=index"


def test_post_to_a_protected_page_is_not_remembered(client, auth):
    client.post("/create", data={"title": "lost"})
    assert auth.login().headers["Location"] == "/"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(client, auth, target):
    with client.session_transaction() as s:
        s["next"] = target
    assert auth.login().headers["Location"] == "/"


@pytest.mark.parametrize(
    ("target", "local"),
    (
        ("/", True),
        ("/1/update?x=1", True),
        ("//evil.example", False),
        ("/\\evil.example", False),
        ("https://evil.example/", False),
        ("javascript:alert(1)", False),
        ("/\nSet-Cookie: x", False),
        ("", False),
        (None, False),
    ),
)
def test_is_local_path(target, local):
    assert is_local_path(target) is local


def test_login_starts_a_fresh_session(client, auth):
    with client.session_transaction() as s:
        s["planted"] = "by someone else"
    auth.login()
    with client.session_transaction() as s:
        assert "planted" not in s
        assert s["user_id"] == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_logout(client, auth, method):
    auth.login()
    with client:
        response = getattr(client, method)("/auth/logout")
        assert response.headers["Location"] == "/"
        assert "user_id" not in session
    assert b"Log In" in client.get("/").data


def test_deleted_user_is_logged_out(app, client, auth):
    auth.login()
    with app.app_context():
        db = get_db()
        db.execute("DELETE FROM post")
        db.execute("DELETE FROM user WHERE id = 1")
    assert b"Log In" in client.get("/").data


@pytest.mark.parametrize("path", ("/auth/login", "/auth/register"))
@pytest.mark.parametrize(
    ("body", "message"),
    (
        (b"username=te%00st&password=long+enough", b"Username must not contain NUL characters."),
        (b"username=test&password=long%00enough", b"Password must not contain NUL characters."),
        (b"username=%FF%FE&password=long+enough", b"Username must be valid UTF-8 text."),
        (b"username=test&password=\xff\xfe\xfd\xfc12345", b"Password must be valid UTF-8 text."),
    ),
)
def test_bad_bytes_in_account_fields_are_form_errors(client, count, path, body, message):
    response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert message in response.data
    assert count("user") == 2
    assert count("user_session") == 0
    assert count("login_failure") == 0


@pytest.mark.parametrize(
    ("username", "password", "message"),
    (
        ("x" * 1025, "whatever", b"Username must be at most 1024 characters."),
        ("test", "x" * 1025, b"Password must be at most 1024 characters."),
    ),
)
def test_login_refuses_over_long_fields(client, count, username, password, message):
    response = client.post("/auth/login", data={"username": username, "password": password})
    assert response.status_code == 400
    assert message in response.data
    assert count("login_failure") == 0


def test_login_accepts_a_long_tutorial_era_username(app, auth):
    # The tutorial had no length rule; such accounts still log in.
    name = "n" * 40
    with app.app_context():
        get_db().execute(
            "INSERT INTO user (username, password) SELECT ?, password FROM user WHERE id = 1",
            (name,),
        )
    assert auth.login(name, "test").headers["Location"] == "/"


@pytest.mark.parametrize("path", ("/auth/login", "/auth/register"))
def test_too_large_account_forms_write_nothing(make_app, app, count, path):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = client.post(path, data={"username": "big", "password": "x" * 4096})
    assert response.status_code == 413
    assert count("user") == 2
    assert count("login_failure") == 0
    assert count("user_session") == 0


@pytest.mark.parametrize(
    ("target", "location"),
    (
        ("///evil.example", "/"),
        ("/\t/evil.example", "/"),  # browsers drop the tab and read //evil.example
        ("https:evil.example", "/"),
        ("\\\\evil.example", "/"),
        (["/"], "/"),
        ("/%0d%0aSet-Cookie:x", "/%0d%0aSet-Cookie:x"),  # stays encoded: a local path
    ),
)
def test_hostile_return_targets_are_not_followed(client, auth, target, location):
    with client.session_transaction() as s:
        s["next"] = target
    assert auth.login().headers["Location"] == location


# Common passwords ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ("password", "12345678", "PassWord", "QWERTY123", "iloveyou", "trustno1")
)
def test_register_refuses_common_passwords(client, count, password):
    response = client.post("/auth/register", data={"username": "newcomer", "password": password})
    assert response.status_code == 400
    assert b"This password is one of the most common ones; choose another." in response.data
    assert count("user") == 2
    assert count("registration_attempt") == 0


def test_taken_name_is_reported_before_a_common_password(client):
    response = client.post("/auth/register", data={"username": "test", "password": "password"})
    assert b"User test is already registered." in response.data
    assert b"most common" not in response.data


def test_password_equal_to_the_username_is_reported_before_being_common(client):
    response = client.post("/auth/register", data={"username": "password", "password": "password"})
    assert b"Password must not be the same as the username." in response.data


def test_common_password_list_is_the_top_ten_thousand_loaded_once(app):
    passwords = flaskr_auth.common_passwords()
    assert isinstance(passwords, frozenset)
    assert len(passwords) == 10_000
    assert {"password", "12345678", "qwerty", "123456789"} <= passwords
    assert all(p == p.lower() and p.strip() == p and p for p in passwords)
    assert flaskr_auth.common_passwords() is passwords


def test_uncommon_password_is_accepted(client, count):
    response = client.post(
        "/auth/register", data={"username": "newcomer", "password": "gravel kettle orbit"}
    )
    assert response.headers["Location"] == "/auth/login"
    assert count("user") == 3


# Password hashing slots ------------------------------------------------------------------


@pytest.fixture
def busy_password_slots(monkeypatch):
    """Hold both password slots, as two long hashes would; waiting for one gives up fast."""
    monkeypatch.setattr(flaskr_auth.password_slots, "wait", 0.05)
    with flaskr_auth.password_slots.held(), flaskr_auth.password_slots.held():
        yield


def assert_busy(response):
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert b"The server is busy checking passwords." in response.data
    assert b'class="site-nav"' in response.data


@pytest.mark.parametrize(("username", "password"), (("test", "test"), ("nobody", "whatever")))
def test_login_is_503_while_the_password_slots_are_busy(
    client, count, busy_password_slots, username, password
):
    response = client.post("/auth/login", data={"username": username, "password": password})
    assert_busy(response)
    # Refused unchecked: it counts against no one and logs no one in.
    assert count("login_failure") == 0
    assert count("user_session") == 0


def test_register_is_503_while_the_password_slots_are_busy(client, count, busy_password_slots):
    response = client.post(
        "/auth/register", data={"username": "newcomer", "password": "gravel kettle orbit"}
    )
    assert_busy(response)
    assert count("user") == 2
    assert count("registration_attempt") == 0


def test_device_login_is_503_while_the_password_slots_are_busy(
    app, client, auth, count, monkeypatch
):
    auth.login()
    monkeypatch.setattr(flaskr_auth.password_slots, "wait", 0.05)
    with flaskr_auth.password_slots.held(), flaskr_auth.password_slots.held():
        for _ in range(6):
            assert_busy(auth.login("test", "wrong password"))
    assert count("device_login_failure") == 0
    assert auth.login("test", "wrong password").status_code == 400


def test_at_most_two_password_hashes_run_at_once(app, monkeypatch):
    running, most = [0], [0]
    lock = threading.Lock()

    def counted(real):
        def hash_work(*args, **kwargs):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.05)
            try:
                return real(*args, **kwargs)
            finally:
                with lock:
                    running[0] -= 1

        return hash_work

    monkeypatch.setattr(flaskr_auth, "check_password_hash", counted(check_password_hash))
    monkeypatch.setattr(flaskr_auth, "generate_password_hash", counted(generate_password_hash))
    forms = [
        ("/auth/login", {"username": "test", "password": "test"}),
        ("/auth/login", {"username": "other", "password": "wrong"}),
        ("/auth/login", {"username": "nobody", "password": "whatever"}),
        ("/auth/register", {"username": "new1", "password": "gravel kettle orbit"}),
        ("/auth/register", {"username": "new2", "password": "gravel kettle orbit"}),
        ("/auth/register", {"username": "new3", "password": "gravel kettle orbit"}),
    ]
    statuses = [None] * len(forms)
    start = threading.Barrier(len(forms))

    def send(i, path, data):
        client = app.test_client()
        start.wait()
        statuses[i] = client.post(path, data=data).status_code

    threads = [threading.Thread(target=send, args=(i, *f)) for i, f in enumerate(forms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [302, 400, 400, 302, 302, 302]
    assert most[0] == 2


# Logging out -----------------------------------------------------------------------------


def is_logged_in(client):
    with client:
        client.get("/")
        return "user_id" in session


@pytest.mark.parametrize(
    "headers",
    (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "none"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
        {"Origin": "http://evil.example"},
        {"Origin": "http://localhost"},
    ),
)
def test_logout_link_from_elsewhere_asks_first(client, auth, count, headers):
    auth.login()
    response = client.get("/auth/logout", headers=headers)
    assert response.status_code == 200
    assert b'class="site-nav"' in response.data
    assert b'<form method="post" action="/auth/logout"' in response.data
    assert b'<input type="submit" value="Log Out">' in response.data
    assert is_logged_in(client)
    assert count("user_session") == 1

    # The button on that page logs out.
    assert client.post("/auth/logout").headers["Location"] == "/"
    assert not is_logged_in(client)
    assert count("user_session") == 0


@pytest.mark.parametrize("headers", ({"Sec-Fetch-Site": "same-origin"}, {}))
def test_logout_link_on_this_site_logs_out(client, auth, count, headers):
    auth.login()
    response = client.get("/auth/logout", headers=headers)
    assert response.headers["Location"] == "/"
    assert not is_logged_in(client)
    assert count("user_session") == 0


def test_logout_form_from_another_site_is_refused(client, auth):
    auth.login()
    response = client.post("/auth/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert is_logged_in(client)


def test_visitor_following_a_logout_link_from_elsewhere_goes_home(client):
    response = client.get("/auth/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.headers["Location"] == "/"


def test_header_log_out_is_a_post_form(client, auth):
    auth.login()
    page = client.get("/").data.decode()
    assert '<form class="logout-form" action="/auth/logout" method="post">' in page
    assert '<button type="submit" class="link-button">Log Out</button>' in page
    assert 'href="/auth/logout"' not in page


@contextmanager
def write_lock_held_elsewhere(app):
    """Hold the database's write lock from another connection, as a long writer would."""
    locker = sqlite3.connect(app.config["DATABASE"], isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def read_only_app(make_app, **config):
    """An app whose connections cannot write, as on a read-only file system."""
    app = make_app(**config)

    @app.before_request
    def make_connection_read_only():
        get_db().execute("PRAGMA query_only = ON")

    return app


@pytest.mark.parametrize(
    ("fault", "reason"),
    (("locked", "database is locked"), ("read-only", "attempt to write a readonly database")),
)
@pytest.mark.sqlite_only
def test_logout_still_ends_this_browsers_session_when_its_record_cannot_be_deleted(
    make_app, app, count, caplog, fault, reason
):
    client = make_app(SECRET_KEY="shared").test_client()
    client.post("/auth/login", data={"username": "test", "password": "test"})
    stolen = client.get_cookie("session").value
    if fault == "locked":
        browser = make_app(SECRET_KEY="shared", SQLITE_BUSY_TIMEOUT_MS=50).test_client()
        trouble = write_lock_held_elsewhere(app)
    else:
        browser = read_only_app(make_app, SECRET_KEY="shared").test_client()
        trouble = nullcontext()
    browser.set_cookie("session", stolen)
    assert is_logged_in(browser)

    with trouble, caplog.at_level(logging.INFO, logger="flaskr"):
        response = browser.post("/auth/logout")
        assert response.headers["Location"] == "/"
        page = browser.get("/")
    assert b"You are logged out on this device." in page.data
    assert b"Log In" in page.data
    assert not is_logged_in(browser)
    (line,) = [r for r in caplog.records if r.getMessage().startswith("logout")]
    assert line.levelno == logging.WARNING
    assert line.getMessage() == (
        f"logout by 'test' from 127.0.0.1 could not delete the session record: {reason}"
    )
    # The record is kept, and ends with the session's lifetime.
    assert count("user_session") == 1
    assert is_logged_in(client)


@pytest.mark.sqlite_only
def test_logout_with_a_stale_session_on_a_locked_database_still_clears_it(make_app, app, caplog):
    client = make_app(SQLITE_BUSY_TIMEOUT_MS=50).test_client()
    with client.session_transaction() as s:
        s["user_id"] = 1
        s["token"] = "left over"
    with write_lock_held_elsewhere(app), caplog.at_level(logging.INFO, logger="flaskr"):
        assert client.get("/auth/logout").headers["Location"] == "/"
    with client.session_transaction() as s:
        assert "token" not in s
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("logout")]
    assert line.startswith("logout from 127.0.0.1 could not delete the session record")


def test_after_registering_the_login_form_says_so_with_the_username_filled_in(client):
    client.post("/auth/register", data={"username": "alice", "password": "correct horse"})
    page = client.get("/auth/login").data.decode()
    assert "Account created. Log in with your new username and password." in page
    assert 'name="username" id="username" value="alice"' in page
    # Once: the next visit to the form starts empty.
    assert 'id="username" value=""' in client.get("/auth/login").data.decode()


def test_log_in_and_register_link_to_each_other(make_app, client):
    assert b'<a href="/auth/register">Create an account</a>' in client.get("/auth/login").data
    assert b'<a href="/auth/login">Log in instead</a>' in client.get("/auth/register").data
    closed = make_app(REGISTRATION_OPEN=False).test_client()
    assert b"Create an account" not in closed.get("/auth/login").data


def test_a_bug_while_ending_a_session_is_not_taken_for_a_fault(app, client, auth, monkeypatch):
    auth.login()

    @contextmanager
    def broken():
        raise sqlite3.IntegrityError("a bug")
        yield  # pragma: no cover - never reached

    monkeypatch.setattr(flaskr_auth, "transaction", broken)
    with pytest.raises(sqlite3.IntegrityError, match="a bug"):
        client.post("/auth/logout")


def test_a_session_ends_at_its_lifetime_even_while_nothing_is_written(app, client, auth):
    # The session check is kept until the next commit, but never past the second it was
    # made in: with no write at all, an ended session is still refused.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=3)
    auth.login()
    started = time.monotonic()
    assert b"Log Out" in client.get("/").data
    time.sleep(1.2)
    # A message shown re-signs the session cookie, which then outlives the session itself.
    assert client.post("/create", data={"title": ""}).status_code == 400
    assert b"Log Out" in client.get("/").data
    time.sleep(max(0, started + 3.6 - time.monotonic()))
    page = client.get("/").data
    assert b"Log In" in page and b"Log Out" not in page
