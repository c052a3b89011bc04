import logging

import pytest
from live import FAST_HASH

from flaskr import create_app, settings
from flaskr.db import get_db


def test_config():
    assert not create_app().testing
    assert create_app({"TESTING": True}).testing


def test_hello(client):
    response = client.get("/hello")
    assert response.data == b"Hello, World!"


def test_defaults(tmp_path):
    app = create_app()
    assert app.instance_path == str(tmp_path / "instance")
    assert app.config["DATABASE"] == str(tmp_path / "instance" / "flaskr.sqlite")
    assert app.config["POSTS_PER_PAGE"] == 5
    assert app.config["PASSWORD_MIN_LENGTH"] == 8
    assert app.config["REGISTRATION_OPEN"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def write_instance_config(tmp_path, text):
    folder = tmp_path / "instance"
    folder.mkdir(exist_ok=True)
    (folder / "config.py").write_text(text)


def test_instance_config_overrides_defaults(tmp_path):
    write_instance_config(tmp_path, "POSTS_PER_PAGE = 7\nREGISTRATION_OPEN = False\n")
    app = create_app()
    assert app.config["POSTS_PER_PAGE"] == 7
    assert app.config["REGISTRATION_OPEN"] is False


def test_environment_overrides_instance_config(tmp_path, monkeypatch):
    write_instance_config(tmp_path, "POSTS_PER_PAGE = 7\n")
    monkeypatch.setenv("FLASKR_POSTS_PER_PAGE", "9")
    monkeypatch.setenv("FLASKR_DATABASE", str(tmp_path / "elsewhere.sqlite"))
    app = create_app()
    assert app.config["POSTS_PER_PAGE"] == 9
    assert app.config["DATABASE"] == str(tmp_path / "elsewhere.sqlite")


def test_test_config_replaces_instance_config_and_environment(tmp_path, monkeypatch):
    write_instance_config(tmp_path, "POSTS_PER_PAGE = 7\n")
    monkeypatch.setenv("FLASKR_POSTS_PER_PAGE", "9")
    app = create_app({"TESTING": True, "REGISTRATION_OPEN": False})
    assert app.config["POSTS_PER_PAGE"] == 5
    assert app.config["REGISTRATION_OPEN"] is False


def test_instance_path_moves_with_environment(tmp_path, monkeypatch):
    moved = tmp_path / "somewhere" / "else"
    monkeypatch.setenv("FLASKR_INSTANCE_PATH", str(moved))
    app = create_app()
    assert app.instance_path == str(moved)
    assert moved.is_dir()
    assert app.config["DATABASE"] == str(moved / "flaskr.sqlite")


def test_relative_instance_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLASKR_INSTANCE_PATH", "relative-instance")
    assert create_app().instance_path == str(tmp_path / "relative-instance")


def new_server(tmp_path, monkeypatch, name="server"):
    """An app as a server of the site starts it: no test config, its own instance folder,
    the site's database (made by init-db once)."""
    monkeypatch.setenv("FLASKR_INSTANCE_PATH", str(tmp_path / name))
    monkeypatch.setenv("FLASKR_DATABASE", str(tmp_path / "site.sqlite"))
    monkeypatch.setenv("FLASKR_PASSWORD_HASH_METHOD", FAST_HASH)
    app = create_app()
    assert app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    return app


def stored_keys(app):
    with app.app_context():
        return [row[0] for row in get_db().execute("SELECT value FROM signing_key")]


def logged_in(app, cookie):
    """Whether a request to app carrying this session cookie is a logged-in user's."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    return b"Log Out" in client.get("/").data


def test_generated_secret_key_is_kept_in_the_database_and_reused(tmp_path, monkeypatch):
    app = new_server(tmp_path, monkeypatch)
    assert app.test_client().get("/hello").status_code == 200
    key = app.config["SECRET_KEY"]
    assert len(key) == 64 and key != "dev"
    assert stored_keys(app) == [key]
    assert not (tmp_path / "server" / "secret_key").exists()
    restarted = new_server(tmp_path, monkeypatch)
    restarted.test_client().get("/hello")
    assert restarted.config["SECRET_KEY"] == key


def test_two_servers_without_a_configured_key_share_sessions(tmp_path, monkeypatch):
    first = new_server(tmp_path, monkeypatch, "first")
    second = new_server(tmp_path, monkeypatch, "second")
    client = first.test_client()
    login = {"username": "newcomer", "password": "a fine password"}
    assert client.post("/auth/register", data=login).status_code == 302
    assert client.post("/auth/login", data=login).status_code == 302
    cookie = client.get_cookie("session").value
    assert logged_in(first, cookie) and logged_in(second, cookie)
    # The cookie is signed: a server with another key takes it for a visitor's.
    monkeypatch.setenv("FLASKR_SECRET_KEY", "another key of some length")
    assert not logged_in(new_server(tmp_path, monkeypatch, "third"), cookie)


def test_servers_starting_at_once_agree_on_the_key(tmp_path, monkeypatch):
    app = new_server(tmp_path, monkeypatch)
    with app.app_context():
        # Another server stores its key between this one's look and its own insert.
        get_db().execute(
            "CREATE TRIGGER other_server BEFORE INSERT ON signing_key BEGIN"
            " INSERT INTO signing_key (id, value) VALUES (1, 'the other server''s key'); END"
        )
    app.test_client().get("/hello")
    assert app.config["SECRET_KEY"] == "the other server's key"
    assert stored_keys(app) == ["the other server's key"]


def test_an_older_sites_key_file_is_adopted(tmp_path, monkeypatch):
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "secret_key").write_text("the key an older Flaskr made\n")
    app = new_server(tmp_path, monkeypatch)
    # A login the older Flaskr signed with that key.
    older = create_app(
        {
            "SECRET_KEY": "the key an older Flaskr made",
            "DATABASE": str(tmp_path / "site.sqlite"),
            "PASSWORD_HASH_METHOD": FAST_HASH,
        }
    )
    client = older.test_client()
    login = {"username": "veteran", "password": "a fine password"}
    client.post("/auth/register", data=login)
    client.post("/auth/login", data=login)
    cookie = client.get_cookie("session").value
    assert logged_in(app, cookie)
    assert stored_keys(app) == ["the key an older Flaskr made"]


@pytest.mark.parametrize("content", ["", "dev\n"])
def test_an_empty_or_weak_key_file_is_not_adopted(tmp_path, monkeypatch, content):
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "secret_key").write_text(content)
    app = new_server(tmp_path, monkeypatch)
    app.test_client().get("/hello")
    assert len(app.config["SECRET_KEY"]) == 64


@pytest.mark.parametrize("weak", ["dev", ""])
def test_weak_configured_key_is_replaced(tmp_path, monkeypatch, weak):
    monkeypatch.setenv("FLASKR_SECRET_KEY", weak)
    app = new_server(tmp_path, monkeypatch)
    app.test_client().get("/hello")
    assert app.config["SECRET_KEY"] not in ("dev", "")
    assert stored_keys(app) == [app.config["SECRET_KEY"]]


def test_configured_secret_key_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASKR_SECRET_KEY", "a configured secret of some length")
    app = new_server(tmp_path, monkeypatch)
    app.test_client().get("/hello")
    assert app.config["SECRET_KEY"] == "a configured secret of some length"
    assert stored_keys(app) == []


def test_test_config_without_key_gets_a_random_unsaved_key(tmp_path):
    first = create_app({"TESTING": True}).config["SECRET_KEY"]
    second = create_app({"TESTING": True}).config["SECRET_KEY"]
    assert first != second and len(first) == 64
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_before_init_db_pages_that_need_no_data_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASKR_DATABASE", str(tmp_path / "site.sqlite"))
    client = create_app().test_client()
    assert client.get("/hello").data == b"Hello, World!"


def test_a_database_that_cannot_be_opened_is_503_before_the_key_is_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASKR_DATABASE", str(tmp_path / "missing" / "site.sqlite"))
    response = create_app().test_client().get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"


def test_a_bug_while_loading_the_key_is_not_hidden_as_a_logout(tmp_path, monkeypatch):
    app = new_server(tmp_path, monkeypatch)
    app.testing = True  # the error reaches the test instead of the error page

    def broken(key_file):
        raise RuntimeError("a bug")

    monkeypatch.setattr(settings, "load_secret_key", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        app.test_client().get("/hello")


def test_invalid_synchronous_setting_is_refused():
    with pytest.raises(ValueError, match="SQLITE_SYNCHRONOUS"):
        create_app({"TESTING": True, "SQLITE_SYNCHRONOUS": "SOMETIMES"})


def test_proxy_fix_trusts_forwarded_headers(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FLASKR_PROXY_FIX", "1")
    monkeypatch.setenv("FLASKR_DATABASE", str(tmp_path / "flaskr.sqlite"))
    client = create_app().test_client()
    with caplog.at_level(logging.INFO, logger="flaskr"):
        client.get("/hello", headers={"X-Forwarded-For": "203.0.113.7"})
    assert "203.0.113.7 GET /hello 200" in caplog.text


def test_without_proxy_fix_forwarded_headers_are_ignored(client, caplog):
    with caplog.at_level(logging.INFO, logger="flaskr"):
        client.get("/hello", headers={"X-Forwarded-For": "203.0.113.7"})
    assert "127.0.0.1 GET /hello 200" in caplog.text
    assert "203.0.113.7" not in caplog.text
