import logging


def test_one_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="flaskr"):
        client.get("/hello")
        client.get("/missing")
    lines = [r.getMessage() for r in caplog.records if r.name == "flaskr"]
    assert len(lines) == 2
    assert lines[0].startswith("127.0.0.1 GET /hello 200 ")
    assert lines[1].startswith("127.0.0.1 GET /missing 404 ")


def test_passwords_are_never_logged(auth, caplog):
    with caplog.at_level(logging.INFO, logger="flaskr"):
        auth.login("test", "a-wrong-password-123")
    assert "POST /auth/login 400" in caplog.text
    assert "a-wrong-password-123" not in caplog.text


def test_lines_are_written_once(app):
    # Only the root handler writes; the framework's own stderr handler would double them.
    assert app.logger.handlers == []
    assert app.logger.propagate


def test_a_path_cannot_forge_a_log_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="flaskr"):
        client.get("/x%0a127.0.0.1 GET /admin 200")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "flaskr"]
    assert "\n" not in line
    assert "GET /x\\n127.0.0.1 GET /admin 200 404" in line
