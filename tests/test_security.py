import hashlib
import logging
import re
import threading
import time
from pathlib import Path

import pytest
from flask import session
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from flaskr import security
from flaskr.db import get_db, utc_time
from flaskr.security import MAX_ID

CROSS_SITE = b"This form was sent from another site, so it was refused."


# Cross-site request refusal -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "CROSS-SITE"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "https://localhost"},
        {"Origin": "http://localhost:8080"},
        {"Origin": "http://localhost.evil.example"},
    ),
)
def test_cross_site_post_is_refused(client, auth, count, headers):
    auth.login()
    response = client.post("/create", data={"title": "forged", "body": ""}, headers=headers)
    assert response.status_code == 403
    assert CROSS_SITE in response.data
    assert b'class="site-nav"' in response.data
    assert count("post") == 1


@pytest.mark.parametrize(
    "headers",
    (
        {},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
        {"Origin": "http://localhost"},
        {"Origin": "HTTP://LocalHost"},
    ),
)
def test_same_origin_post_is_allowed(client, auth, count, headers):
    auth.login()
    response = client.post("/create", data={"title": "mine", "body": ""}, headers=headers)
    assert response.headers["Location"] == "/"
    assert count("post") == 2


@pytest.mark.parametrize("method", ("post", "put", "patch", "delete"))
def test_every_state_changing_method_is_checked(client, method):
    response = getattr(client, method)("/1/delete", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403


def test_cross_site_get_is_allowed(client):
    # Following a link from another site is fine: GET changes nothing.
    response = client.get("/", headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"})
    assert response.status_code == 200


def test_cross_site_login_is_refused(client):
    response = client.post(
        "/auth/login",
        data={"username": "test", "password": "test"},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403
    with client:
        client.get("/")
        assert "user_id" not in session


def test_cross_site_register_is_refused(client, count):
    response = client.post(
        "/auth/register",
        data={"username": "forged", "password": "long enough"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403
    assert count("user") == 2


def test_own_origin_is_the_one_the_proxy_reports(make_app, app, count):
    # app creates the database; this second app on it trusts one proxy.
    client = make_app(PROXY_FIX=1).test_client()
    behind_proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "blog.example"}
    client.post("/auth/login", data={"username": "test", "password": "test"}, headers=behind_proxy)

    refused = client.post(
        "/create",
        data={"title": "x"},
        headers={**behind_proxy, "Origin": "http://localhost"},
    )
    assert refused.status_code == 403
    allowed = client.post(
        "/create",
        data={"title": "x"},
        headers={**behind_proxy, "Origin": "https://blog.example"},
    )
    assert allowed.status_code == 302
    assert count("post") == 2


# Security headers ------------------------------------------------------------------------

CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
)


def assert_security_headers(response):
    directives = {d.strip() for d in response.headers["Content-Security-Policy"].split(";")}
    assert set(CSP_DIRECTIVES) <= directives
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    (
        ("get", "/", 200),
        ("get", "/auth/login", 200),
        ("get", "/hello", 200),
        ("get", "/healthz", 200),
        ("get", "/static/style.css", 200),
        ("get", "/static/app.js", 200),
        ("get", "/no/such/page", 404),
        ("get", "/1/delete", 405),
        ("post", "/1/delete", 302),
        ("get", "/?page=0", 404),
    ),
)
def test_every_response_has_the_security_headers(client, method, path, status):
    response = getattr(client, method)(path)
    response.close()  # static files are streamed from an open file
    assert response.status_code == status
    assert_security_headers(response)
    assert "Strict-Transport-Security" not in response.headers


def test_error_pages_have_the_security_headers(app, client):
    def broken():
        raise RuntimeError("boom")

    app.add_url_rule("/broken", "broken", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/broken")
    assert response.status_code == 500
    assert_security_headers(response)
    assert_security_headers(client.post("/create", headers={"Origin": "null"}))


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/").headers
    response = client.get("/", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_hsts_behind_a_tls_proxy(make_app, app):
    client = make_app(PROXY_FIX=1).test_client()
    response = client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert "max-age=" in response.headers["Strict-Transport-Security"]


def test_a_view_keeps_its_own_content_security_policy(app, client):
    app.add_url_rule(
        "/sandboxed",
        "sandboxed",
        lambda: ("untrusted", {"Content-Security-Policy": "sandbox; default-src 'none'"}),
    )
    response = client.get("/sandboxed")
    assert response.headers.getlist("Content-Security-Policy") == ["sandbox; default-src 'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


TEMPLATES = Path(__file__).parent.parent / "flaskr" / "templates"
INLINE_CODE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:", re.IGNORECASE
)


def test_templates_have_no_inline_script_or_style():
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert templates
    for template in templates:
        text = template.read_text(encoding="utf-8")
        assert INLINE_CODE.search(text) is None, template.name


def test_inline_code_pattern_catches_inline_code():
    for bad in ("<script>x()</script>", '<p style="x">', '<a onclick="x">', "<style>"):
        assert INLINE_CODE.search(bad)
    assert INLINE_CODE.search('<script src="/static/app.js" defer></script>') is None


# Session cookie --------------------------------------------------------------------------


def session_cookie_header(response):
    (header,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    return header


def test_session_cookie_flags(auth):
    header = session_cookie_header(auth.login())
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header


def test_session_cookie_secure_when_configured(make_app, app):
    client = make_app(SESSION_COOKIE_SECURE=True).test_client()
    response = client.post(
        "/auth/login", data={"username": "test", "password": "test"}, base_url="https://localhost"
    )
    header = session_cookie_header(response)
    assert "Secure" in header
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header


# Server-side sessions --------------------------------------------------------------------


def logged_in(client):
    return b"Log Out" in client.get("/").data


def test_replayed_cookie_after_logout_is_anonymous(app, client, auth, query):
    auth.login()
    stolen = client.get_cookie("session").value
    assert logged_in(client)
    auth.logout()

    client.set_cookie("session", stolen)
    assert not logged_in(client)
    assert client.post("/create", data={"title": "replayed"}).headers["Location"] == ("/auth/login")
    assert query("SELECT COUNT(*) FROM post")[0][0] == 1


def test_logout_ends_only_that_session(app, auth):
    other_device = app.test_client()
    other_device.post("/auth/login", data={"username": "test", "password": "test"})
    auth.login()
    auth.logout()
    assert logged_in(other_device)


def test_session_without_a_token_is_anonymous(client):
    with client.session_transaction() as s:
        s["user_id"] = 1
    assert not logged_in(client)


@pytest.mark.parametrize("token", ("forged", 12345, None))
def test_session_with_a_wrong_token_is_anonymous(client, auth, token):
    auth.login()
    with client.session_transaction() as s:
        s["token"] = token
    assert not logged_in(client)


def test_token_of_another_user_is_refused(client, auth):
    auth.login("other", "other")
    with client.session_transaction() as s:
        s["user_id"] = 1
    assert not logged_in(client)


def test_database_keeps_only_the_token_hash(app, client, auth, query):
    auth.login()
    with client.session_transaction() as s:
        token = s["token"]
    assert len(token) >= 32
    rows = query("SELECT token_hash, user_id FROM user_session")
    assert [tuple(r) for r in rows] == [(hashlib.sha256(token.encode()).hexdigest(), 1)]


def test_logout_deletes_the_session_record(app, auth, query):
    auth.login()
    auth.logout()
    assert query("SELECT COUNT(*) FROM user_session")[0][0] == 0


def test_logout_without_a_session_is_harmless(client):
    assert client.get("/auth/logout").headers["Location"] == "/"


def test_sessions_end_after_their_lifetime(app, client, auth, query):
    auth.login()
    query("UPDATE user_session SET created = ?", (utc_time(-32 * 24 * 60 * 60),))
    assert not logged_in(client)


def test_login_prunes_the_users_expired_sessions(app, auth, query):
    auth.login()
    query("UPDATE user_session SET created = ?", (utc_time(-32 * 24 * 60 * 60),))
    auth.login()
    assert query("SELECT COUNT(*) FROM user_session")[0][0] == 1


def test_deleting_a_user_deletes_their_sessions(app, auth, query):
    auth.login()
    with app.app_context():
        db = get_db()
        db.execute("DELETE FROM post")
        db.execute("DELETE FROM user WHERE id = 1")
    assert query("SELECT COUNT(*) FROM user_session")[0][0] == 0


# Huge ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "id", (str(MAX_ID + 1), "99999999999999999999999", "1" + "0" * 400, "-1", "0x1")
)
@pytest.mark.parametrize(
    ("method", "suffix"), (("get", "update"), ("post", "update"), ("post", "delete"))
)
def test_ids_out_of_range_are_404(client, auth, count, id, method, suffix):
    auth.login()
    response = getattr(client, method)(f"/{id}/{suffix}", data={"title": "x"})
    assert response.status_code == 404
    assert count("post") == 1


def test_largest_id_reaches_the_database(client, auth):
    auth.login()
    response = client.post(f"/{MAX_ID}/update", data={"title": "x"})
    assert response.status_code == 404
    assert f"Post id {MAX_ID} doesn".encode() in response.data


# Login throttling ------------------------------------------------------------------------


def fail_logins(client, n, username="test", address="192.0.2.1"):
    for _ in range(n):
        response = client.post(
            "/auth/login",
            data={"username": username, "password": "wrong password"},
            environ_base={"REMOTE_ADDR": address},
        )
        assert response.status_code == 400


def login_from(client, address, username="test", password="test"):
    return client.post(
        "/auth/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def add_failures(app, n, username="test", address="192.0.2.1", age_seconds=0):
    """Record n failures as if they had happened age_seconds ago."""
    with app.app_context():
        get_db().executemany(
            "INSERT INTO login_failure (username, address, at) VALUES (?, ?, ?)",
            [(username, address, utc_time(-age_seconds))] * n,
        )


def assert_throttled(response):
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 900
    assert b"Too many failed logins." in response.data
    assert b'class="site-nav"' in response.data
    assert_security_headers(response)


def test_five_failures_for_a_username_throttle_it(client):
    fail_logins(client, 5)
    response = login_from(client, "192.0.2.1")
    assert_throttled(response)
    with client:
        client.get("/")
        assert "user_id" not in session


def test_username_throttle_ignores_case_and_address(client):
    fail_logins(client, 2, "TEST", "192.0.2.1")
    fail_logins(client, 3, "Test", "192.0.2.2")
    assert_throttled(login_from(client, "192.0.2.3"))


def test_throttled_user_does_not_lock_out_others(client):
    fail_logins(client, 5)
    assert login_from(client, "192.0.2.9", "other", "other").headers["Location"] == "/"
    assert login_from(client, "192.0.2.1", "other", "other").headers["Location"] == "/"


def test_unknown_usernames_are_throttled_too(client):
    fail_logins(client, 5, "nobody")
    assert_throttled(login_from(client, "192.0.2.1", "nobody"))


def test_twenty_failures_from_an_address_throttle_it(app, client):
    fail_logins(client, 4, "a", "192.0.2.1")
    add_failures(app, 16, "b", "192.0.2.1")
    assert_throttled(login_from(client, "192.0.2.1"))
    assert login_from(client, "192.0.2.2").headers["Location"] == "/"


def test_nineteen_failures_from_an_address_are_not_enough(app, client):
    add_failures(app, 19, "someone", "192.0.2.1")
    assert login_from(client, "192.0.2.1").headers["Location"] == "/"


def test_retry_after_is_when_the_oldest_counted_failure_expires(app, client):
    add_failures(app, 1, age_seconds=800)
    add_failures(app, 4, age_seconds=600)
    response = login_from(client, "192.0.2.1")
    # The failure 800 s old leaves the window in 100 s; the count then drops to 4.
    assert 90 <= int(response.headers["Retry-After"]) <= 100
    assert b"Try again in 2 minutes." in response.data


def test_retry_after_under_a_minute_says_one_minute(app, client):
    add_failures(app, 5, age_seconds=870)
    assert b"Try again in 1 minute." in login_from(client, "192.0.2.1").data


def test_failures_outside_the_window_do_not_count_and_are_pruned(app, client, query):
    add_failures(app, 30, age_seconds=901)
    assert login_from(client, "192.0.2.1").headers["Location"] == "/"
    assert query("SELECT COUNT(*) FROM login_failure")[0][0] == 0


def test_success_forgets_the_usernames_failures(app, client):
    fail_logins(client, 4)
    assert login_from(client, "192.0.2.1").headers["Location"] == "/"
    fail_logins(client, 4)
    assert login_from(client, "192.0.2.1").headers["Location"] == "/"


def test_limits_are_configurable(make_app, app):
    client = make_app(
        LOGIN_FAILURES_PER_USERNAME=2, LOGIN_FAILURES_PER_ADDRESS=3, LOGIN_WINDOW_SECONDS=60
    ).test_client()
    fail_logins(client, 2)
    assert login_from(client, "192.0.2.1").status_code == 429
    for username in ("x", "y", "z"):
        fail_logins(client, 1, username, "192.0.2.5")
    assert login_from(client, "192.0.2.5", "other", "other").status_code == 429
    add_failures(app, 3, "z", "192.0.2.6", age_seconds=61)
    fail_logins(client, 2, "zz", "192.0.2.6")
    assert login_from(client, "192.0.2.6", "other", "other").status_code == 302


def test_throttling_holds_across_processes(make_app, app):
    # Two app instances on one database stand for two server processes.
    first, second = make_app().test_client(), make_app().test_client()
    fail_logins(first, 3)
    fail_logins(second, 2)
    assert_throttled(login_from(first, "192.0.2.1"))


def test_invalid_input_does_not_count_as_a_failure(app, client, query):
    for _ in range(6):
        response = client.post("/auth/login", data={"username": "test\x00", "password": "x"})
        assert response.status_code == 400
    assert query("SELECT COUNT(*) FROM login_failure")[0][0] == 0


# Auth event log lines --------------------------------------------------------------------


def auth_lines(caplog):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flaskr" and r.getMessage().startswith(("login", "logout"))
    ]


def test_auth_events_are_logged_without_passwords(client, caplog):
    with caplog.at_level(logging.INFO, logger="flaskr"):
        login_from(client, "192.0.2.1", "test", "secret-guess-1")
        login_from(client, "192.0.2.1", "nobody", "secret-guess-2")
        login_from(client, "192.0.2.1")
        client.get("/auth/logout", environ_base={"REMOTE_ADDR": "192.0.2.1"})
        fail_logins(client, 5, "other")
        login_from(client, "192.0.2.1", "other", "secret-guess-3")
    *lines, throttled = auth_lines(caplog)
    assert lines == [
        "login failed for 'test' from 192.0.2.1: incorrect password",
        "login failed for 'nobody' from 192.0.2.1: incorrect username",
        "login by 'test' from 192.0.2.1",
        "logout by 'test' from 192.0.2.1",
        *["login failed for 'other' from 192.0.2.1: incorrect password"] * 5,
    ]
    assert re.fullmatch(
        r"login throttled for 'other' from 192\.0\.2\.1: retry after \d+s", throttled
    )
    assert "secret-guess" not in caplog.text
    assert "wrong password" not in caplog.text


def test_log_lines_escape_hostile_usernames(client, caplog):
    with caplog.at_level(logging.INFO, logger="flaskr"):
        login_from(client, "192.0.2.1", "x\nlogin by 'admin' from 10.0.0.1", "pw")
    (line,) = auth_lines(caplog)
    assert "\n" not in line


# Retrying while throttled ----------------------------------------------------------------


def test_retrying_while_throttled_records_nothing_and_does_not_push_the_wait(app, client, query):
    add_failures(app, 5, age_seconds=600)
    waits = []
    for _ in range(6):
        response = login_from(client, "192.0.2.1")
        assert_throttled(response)
        waits.append(int(response.headers["Retry-After"]))
    assert query("SELECT COUNT(*) FROM login_failure")[0][0] == 5
    # The oldest counted failure leaves the window in about 300 s, however often one retries.
    assert all(wait <= waits[0] <= 300 for wait in waits)


# Parallel guesses ------------------------------------------------------------------------


def in_parallel(app, requests):
    """Send the requests (client.post arguments) at once, each from its own thread, test
    client and app context (so its own database connection); return their responses."""
    responses = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def send(i, kwargs):
        client = app.test_client()
        for name, value in kwargs.pop("cookies", {}).items():
            client.set_cookie(name, value, path="/auth/login")
        start.wait(10)
        responses[i] = client.post(**kwargs)

    threads = [threading.Thread(target=send, args=(i, dict(r))) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return responses


@pytest.fixture
def slow_counting(monkeypatch):
    """Widen the gap between counting attempts and recording one, as a loaded server would."""
    real_wait_for = security.wait_for

    def slow_wait_for(*args):
        wait = real_wait_for(*args)
        time.sleep(0.05)
        return wait

    monkeypatch.setattr(security, "wait_for", slow_wait_for)


def test_parallel_guesses_cannot_all_slip_past_the_username_limit(app, count, slow_counting):
    guess = {"path": "/auth/login", "data": {"username": "test", "password": "wrong password"}}
    responses = in_parallel(app, [guess] * 8)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [400] * 5 + [429] * 3
    assert count("login_failure") == 5


def test_parallel_guesses_cannot_all_slip_past_the_device_limit(app, client, count, slow_counting):
    login_from(client, "192.0.2.1")
    device = client.get_cookie("device", path="/auth/login").value
    guess = {
        "path": "/auth/login",
        "data": {"username": "test", "password": "wrong password"},
        "cookies": {"device": device},
    }
    responses = in_parallel(app, [guess] * 8)
    assert sorted(r.status_code for r in responses) == [400] * 5 + [429] * 3
    assert count("device_login_failure") == 5
    assert count("login_failure") == 0


def test_parallel_registrations_cannot_all_slip_past_the_limit(app, count, slow_counting):
    responses = in_parallel(
        app,
        [
            {"path": "/auth/register", "data": {"username": f"new{i}", "password": NEW_PASSWORD}}
            for i in range(8)
        ],
    )
    assert sorted(r.status_code for r in responses) == [302] * 5 + [429] * 3
    assert count("user") == 2 + 5
    assert count("registration_attempt") == 5


# Device cookies --------------------------------------------------------------------------

DEVICE_OWNER_ADDRESS = "198.51.100.7"


def device_cookie_header(response):
    (header,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("device=")]
    return header


def owner_device(app):
    """A client that has logged in as test once (so holds a device cookie), now logged out."""
    owner = app.test_client()
    assert login_from(owner, DEVICE_OWNER_ADDRESS).headers["Location"] == "/"
    owner.post("/auth/logout")
    return owner


def test_each_login_gives_a_device_cookie(client):
    header = device_cookie_header(login_from(client, "192.0.2.1"))
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Path=/auth/login" in header
    assert "Max-Age=31536000" in header
    assert "Secure" not in header
    assert client.get_cookie("device", path="/auth/login") is not None


def test_device_cookie_is_secure_when_configured(make_app, app):
    client = make_app(SESSION_COOKIE_SECURE=True).test_client()
    response = client.post(
        "/auth/login", data={"username": "test", "password": "test"}, base_url="https://localhost"
    )
    header = device_cookie_header(response)
    assert "Secure" in header
    assert "HttpOnly" in header


def test_failed_login_gives_no_device_cookie(client):
    response = login_from(client, "192.0.2.1", password="wrong password")
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith("device=")]


def test_owner_with_a_device_cookie_logs_in_while_strangers_lock_the_username(app, count):
    owner = owner_device(app)
    stranger = app.test_client()
    fail_logins(stranger, 3, "test", "203.0.113.1")
    fail_logins(stranger, 2, "test", "203.0.113.2")
    assert_throttled(login_from(stranger, "203.0.113.3"))

    assert login_from(owner, DEVICE_OWNER_ADDRESS).headers["Location"] == "/"
    # The owner's login gives the strangers no fresh start.
    owner.post("/auth/logout")
    assert count("login_failure") == 5
    assert_throttled(login_from(stranger, "203.0.113.4"))
    assert login_from(owner, DEVICE_OWNER_ADDRESS).headers["Location"] == "/"


def test_owner_with_a_device_cookie_logs_in_while_their_address_is_over_its_limit(app):
    owner = owner_device(app)
    add_failures(app, 20, "someone", DEVICE_OWNER_ADDRESS)
    # Everyone else behind that address is held...
    assert_throttled(login_from(app.test_client(), DEVICE_OWNER_ADDRESS))
    # ...but not the owner on a known device.
    assert login_from(owner, DEVICE_OWNER_ADDRESS).headers["Location"] == "/"


def test_device_that_keeps_failing_is_stopped_by_its_own_limit(app, count, caplog):
    owner = owner_device(app)
    for _ in range(5):
        response = login_from(owner, DEVICE_OWNER_ADDRESS, password="wrong password")
        assert response.status_code == 400
        assert b"Incorrect password." in response.data
    with caplog.at_level(logging.INFO, logger="flaskr"):
        refused = login_from(owner, DEVICE_OWNER_ADDRESS)
    assert_throttled(refused)
    assert re.fullmatch(
        r"login throttled for 'test' from 198\.51\.100\.7 on a known device: retry after \d+s",
        auth_lines(caplog)[-1],
    )
    assert count("device_login_failure") == 5
    # Only that device: the username and the address are not locked for anyone else.
    assert count("login_failure") == 0
    assert login_from(app.test_client(), DEVICE_OWNER_ADDRESS).headers["Location"] == "/"


def test_device_retrying_while_throttled_records_nothing_and_does_not_push_the_wait(
    app, count, query
):
    owner = owner_device(app)
    fail_logins(owner, 5, "test", DEVICE_OWNER_ADDRESS)
    query("UPDATE device_login_failure SET at = ?", (utc_time(-600),))
    waits = []
    for _ in range(6):
        response = login_from(owner, DEVICE_OWNER_ADDRESS)
        assert_throttled(response)
        waits.append(int(response.headers["Retry-After"]))
    assert count("device_login_failure") == 5
    assert all(wait <= waits[0] <= 300 for wait in waits)


def test_device_success_forgets_only_its_own_failures(app, count):
    owner = owner_device(app)
    add_failures(app, 3, "test", "203.0.113.1")
    fail_logins(owner, 4, "test", DEVICE_OWNER_ADDRESS)
    assert login_from(owner, DEVICE_OWNER_ADDRESS).headers["Location"] == "/"
    assert count("device_login_failure") == 0
    assert count("login_failure") == 3
    fail_logins(owner, 4, "test", DEVICE_OWNER_ADDRESS)
    assert login_from(owner, DEVICE_OWNER_ADDRESS).headers["Location"] == "/"


def test_device_failures_expire_with_the_window(app, count, query):
    owner = owner_device(app)
    fail_logins(owner, 5, "test", DEVICE_OWNER_ADDRESS)
    query("UPDATE device_login_failure SET at = ?", (utc_time(-901),))
    assert login_from(owner, DEVICE_OWNER_ADDRESS).headers["Location"] == "/"
    assert count("device_login_failure") == 0


def test_device_limit_is_configurable(make_app, app):
    client = make_app(LOGIN_FAILURES_PER_DEVICE=2).test_client()
    login_from(client, DEVICE_OWNER_ADDRESS)
    fail_logins(client, 2, "test", DEVICE_OWNER_ADDRESS)
    assert_throttled(login_from(client, DEVICE_OWNER_ADDRESS))


def lock_out_test(app):
    """Strangers' failures lock the username test."""
    add_failures(app, 5, "test", "203.0.113.1")


def signed(secret_key, claim, salt=security.DEVICE_COOKIE_SALT):
    return URLSafeTimedSerializer(secret_key, salt=salt).dumps(claim)


@pytest.mark.parametrize(
    "forge",
    (
        lambda app, device: "not a signed value",
        lambda app, device: device[:-2] + ("AA" if not device.endswith("AA") else "BB"),
        lambda app, device: signed("another key", {"user": 1, "device": "mine"}),
        lambda app, device: signed(app.secret_key, {"user": 1, "device": "mine"}, "cookie-session"),
    ),
    ids=("garbage", "tampered", "other-key", "other-salt"),
)
def test_forged_device_cookie_gives_no_relief(app, count, forge):
    owner = owner_device(app)
    device = owner.get_cookie("device", path="/auth/login").value
    attacker = app.test_client()
    attacker.set_cookie("device", forge(app, device), path="/auth/login")
    lock_out_test(app)
    assert_throttled(login_from(attacker, "203.0.113.9"))
    assert_throttled(login_from(attacker, "203.0.113.9", password="wrong password"))
    assert count("device_login_failure") == 0


def test_another_users_device_cookie_gives_no_relief(app, client):
    login_from(client, "203.0.113.9", "other", "other")
    lock_out_test(app)
    assert_throttled(login_from(client, "203.0.113.9"))


def test_expired_device_cookie_gives_no_relief(app, monkeypatch):
    year_and_a_day_ago = int(time.time()) - 366 * 24 * 60 * 60
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: year_and_a_day_ago)
        owner = owner_device(app)
    lock_out_test(app)
    assert_throttled(login_from(owner, DEVICE_OWNER_ADDRESS))


# Registration throttling -----------------------------------------------------------------

NEW_PASSWORD = "gravel kettle orbit"


def register_from(client, address, username, password=NEW_PASSWORD):
    return client.post(
        "/auth/register",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def add_registrations(app, n, address="192.0.2.1", age_seconds=0):
    with app.app_context():
        get_db().executemany(
            "INSERT INTO registration_attempt (address, at) VALUES (?, ?)",
            [(address, utc_time(-age_seconds))] * n,
        )


def assert_registration_throttled(response):
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert b"Too many registrations from your address." in response.data
    assert b'class="site-nav"' in response.data


def test_five_registrations_an_hour_from_one_address(client, count, caplog):
    for i in range(5):
        assert register_from(client, "192.0.2.1", f"new{i}").headers["Location"] == "/auth/login"
    with caplog.at_level(logging.INFO, logger="flaskr"):
        refused = register_from(client, "192.0.2.1", "new5")
    assert_registration_throttled(refused)
    assert b"Try again in 60 minutes." in refused.data
    assert 3590 <= int(refused.headers["Retry-After"]) <= 3600
    assert re.fullmatch(
        r"registration throttled from 192\.0\.2\.1: retry after \d+s",
        [r.getMessage() for r in caplog.records if r.getMessage().startswith("registration")][0],
    )
    assert count("user") == 2 + 5
    assert count("registration_attempt") == 5
    # Other addresses are not held.
    assert register_from(client, "192.0.2.2", "new5").headers["Location"] == "/auth/login"


def test_refused_registrations_do_not_count(client, count):
    for _ in range(6):
        register_from(client, "192.0.2.1", "test")
        register_from(client, "192.0.2.1", "newcomer", "password")
        register_from(client, "192.0.2.1", "", "")
    assert count("registration_attempt") == 0
    assert register_from(client, "192.0.2.1", "newcomer").headers["Location"] == "/auth/login"


def test_retrying_registration_while_throttled_records_nothing(app, client, count):
    add_registrations(app, 5, age_seconds=3000)
    waits = []
    for i in range(6):
        response = register_from(client, "192.0.2.1", f"new{i}")
        assert_registration_throttled(response)
        waits.append(int(response.headers["Retry-After"]))
    assert count("registration_attempt") == 5
    assert count("user") == 2
    assert all(wait <= waits[0] <= 600 for wait in waits)


def test_registration_limit_is_configurable_and_old_ones_expire(make_app, app, count):
    client = make_app(REGISTRATIONS_PER_ADDRESS=1, REGISTRATION_WINDOW_SECONDS=60).test_client()
    add_registrations(app, 3, age_seconds=61)
    assert register_from(client, "192.0.2.1", "first").headers["Location"] == "/auth/login"
    assert count("registration_attempt") == 1
    assert_registration_throttled(register_from(client, "192.0.2.1", "second"))


def test_registration_limit_holds_across_processes(make_app, app):
    first, second = make_app().test_client(), make_app().test_client()
    for i in range(3):
        register_from(first, "192.0.2.1", f"first{i}")
    for i in range(2):
        register_from(second, "192.0.2.1", f"second{i}")
    assert_registration_throttled(register_from(first, "192.0.2.1", "third"))
