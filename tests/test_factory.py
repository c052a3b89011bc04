import logging
import os
import stat

import pytest

from flaskr import create_app
from flaskr.settings import load_secret_key, write_secret_key


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


def test_generated_secret_key_is_private_and_reused(tmp_path):
    key = create_app().config["SECRET_KEY"]
    key_file = tmp_path / "instance" / "secret_key"
    assert len(key) == 64 and key != "dev"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key_file.read_text().strip() == key
    assert create_app().config["SECRET_KEY"] == key


def test_sessions_survive_a_restart():
    first = create_app()
    cookie = first.session_interface.get_signing_serializer(first).dumps({"user_id": 1})
    second = create_app()
    assert second.session_interface.get_signing_serializer(second).loads(cookie) == {"user_id": 1}


@pytest.mark.parametrize("weak", ["dev", ""])
def test_weak_configured_key_is_replaced(tmp_path, monkeypatch, weak):
    monkeypatch.setenv("FLASKR_SECRET_KEY", weak)
    key = create_app().config["SECRET_KEY"]
    assert key == (tmp_path / "instance" / "secret_key").read_text().strip()


def test_configured_secret_key_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASKR_SECRET_KEY", "a configured secret of some length")
    assert create_app().config["SECRET_KEY"] == "a configured secret of some length"
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_test_config_without_key_gets_a_random_unsaved_key(tmp_path):
    first = create_app({"TESTING": True}).config["SECRET_KEY"]
    second = create_app({"TESTING": True}).config["SECRET_KEY"]
    assert first != second and len(first) == 64
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_empty_key_file_is_an_error(tmp_path):
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "secret_key").write_text("")
    with pytest.raises(RuntimeError, match="delete it"):
        create_app()


def test_key_written_first_by_another_process_wins(tmp_path):
    (tmp_path / "secret_key").write_text("written by the other process\n")
    write_secret_key(str(tmp_path / "secret_key"))
    assert load_secret_key(str(tmp_path)) == "written by the other process"
    assert os.listdir(tmp_path) == ["secret_key"]


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
