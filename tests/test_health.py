from flaskr.db import get_db


def test_hello(client):
    response = client.get("/hello")
    assert response.data == b"Hello, World!"


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_unreadable_database(make_app, tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    response = make_app(DATABASE=str(garbage)).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"


def test_healthz_schema_not_upgraded(app, client):
    with app.app_context():
        get_db().execute("PRAGMA user_version = 1")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "init-db" in response.get_json()["reason"]
