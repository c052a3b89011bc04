import pytest
from flask import g, session

from flaskr import auth as flaskr_auth
from flaskr.auth import is_local_path, needs_rehash
from flaskr.db import get_db


def stored_hash(app, username):
    with app.app_context():
        return (
            get_db().execute("SELECT password FROM user WHERE username = ?", (username,)).fetchone()
        )[0]


def test_register(client, app):
    assert client.get("/auth/register").status_code == 200

    response = client.post(
        "/auth/register", data={"username": "alice", "password": "correct horse"}
    )
    assert response.headers["Location"] == "/auth/login"
    assert stored_hash(app, "alice").startswith("scrypt:")


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
        "/auth/register", data={"username": "A.b-c_9" + "x" * 25, "password": "12345678"}
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


def test_old_hash_is_upgraded_at_login(app, auth):
    assert stored_hash(app, "test").startswith("pbkdf2:sha256:50000$")
    auth.login()
    upgraded = stored_hash(app, "test")
    assert upgraded.startswith("scrypt:16384:8:1$")
    auth.logout()
    assert auth.login().headers["Location"] == "/"
    assert stored_hash(app, "test") == upgraded


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
