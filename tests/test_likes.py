import pytest

from flaskr.db import get_db


def like(client, post=1):
    return client.post(f"/{post}/like")


def test_like_toggles(client, auth, count):
    auth.login()
    response = like(client)
    assert response.headers["Location"] == "/1/test-title#likes"
    assert count("post_like") == 1
    page = client.get("/1/test-title").data
    assert b"1 like" in page and b'aria-pressed="true"' in page
    assert b"1 like" in client.get("/").data

    like(client)
    assert count("post_like") == 0
    page = client.get("/1/test-title").data
    assert b"0 likes" in page and b'aria-pressed="false"' in page


def test_like_button_keeps_its_label_and_says_whether_it_is_pressed(client, auth):
    auth.login()
    assert b'aria-pressed="false">Like</button>' in client.get("/1/test-title").data
    like(client)
    assert b'aria-pressed="true">Like</button>' in client.get("/1/test-title").data


def test_likes_from_several_users_add_up(client, auth):
    auth.login()
    like(client)
    auth.logout()
    auth.login("other", "other")
    like(client)
    assert b"2 likes" in client.get("/").data


def test_one_like_per_user_is_enforced_by_the_database(app):
    with app.app_context():
        db = get_db()
        db.execute("INSERT INTO post_like (post_id, user_id) VALUES (1, 1)")
        with pytest.raises(db.IntegrityError):
            db.execute("INSERT INTO post_like (post_id, user_id) VALUES (1, 1)")


def test_like_needs_login(client, count):
    assert like(client).headers["Location"] == "/auth/login"
    assert count("post_like") == 0
    assert b"Like</button>" not in client.get("/1/test-title").data


def test_like_missing_post_is_404(client, auth, count):
    auth.login()
    assert like(client, post=42).status_code == 404
    assert count("post_like") == 0


def test_likes_go_with_their_post(client, auth, count):
    auth.login()
    like(client)
    client.post("/1/delete")
    assert count("post_like") == 0


def test_a_readers_like_is_shown_to_that_reader_only(client, auth):
    auth.login()
    like(client)
    assert b'aria-pressed="true"' in client.get("/1/test-title").data
    auth.login("other", "other")
    page = client.get("/1/test-title").data
    assert b"1 like" in page and b'aria-pressed="false"' in page
    like(client)
    assert b"2 likes" in client.get("/1/test-title").data
    assert b'aria-pressed="true"' in client.get("/1/test-title").data
