"""The site's owner: roles, the Admin page, suspension, deletion, links and site settings."""

import logging
import re

import feedparser
import pytest
from images import image_bytes, stored_names

from flaskr.auth import hash_token


@pytest.fixture
def admin(runner, auth):
    """Make "test" an admin (as the owner does once, by command) and log them in."""
    result = runner.invoke(args=["set-role", "test", "admin"])
    assert result.output == "test is now an admin.\n"
    auth.login()
    return auth


def other_client(app, username="other"):
    """A second browser, logged in as username (whose password is the username)."""
    client = app.test_client()
    client.post("/auth/login", data={"username": username, "password": username})
    return client


def logged_in_as(client):
    """The name in the page header of this browser, or None for a visitor."""
    found = re.search(r'class="who"[^>]*>([^<]+)<', client.get("/").get_data(as_text=True))
    return found and found[1]


def test_no_account_is_admin_by_itself(client, auth, query):
    client.post("/auth/register", data={"username": "first", "password": "long enough"})
    assert query("SELECT DISTINCT role FROM user") == [("author",)]
    auth.login()
    assert client.get("/admin").status_code == 403
    assert b'href="/admin"' not in client.get("/").data


def test_set_role_grants_and_takes_back(runner, query):
    assert runner.invoke(args=["set-role", "TEST", "admin"]).output == "test is now an admin.\n"
    assert query("SELECT role FROM user WHERE username = 'test'") == [("admin",)]
    assert runner.invoke(args=["set-role", "test", "author"]).output == "test is now an author.\n"
    assert query("SELECT role FROM user WHERE username = 'test'") == [("author",)]


def test_set_role_refuses_unknown_users_and_roles(runner, query):
    result = runner.invoke(args=["set-role", "nobody", "admin"])
    assert result.exit_code == 1
    assert "There is no user nobody." in result.output
    result = runner.invoke(args=["set-role", "test", "owner"])
    assert result.exit_code == 2
    assert query("SELECT DISTINCT role FROM user") == [("author",)]


def test_visitors_are_sent_to_log_in(client):
    response = client.get("/admin")
    assert response.headers["Location"] == "/auth/login"
    response = client.post("/admin/users/2/suspend")
    assert response.headers["Location"] == "/auth/login"


def test_authors_get_403_for_every_admin_url(app, client, auth, snapshot):
    auth.login()
    before = snapshot()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            path = rule.build({"id": 2})[1]
            method = "GET" if "GET" in rule.methods else "POST"
            response = client.open(path, method=method, data={"title": "x"})
            assert response.status_code == 403, path
    assert snapshot() == before


def test_admin_page_lists_users_with_counts_and_dates(client, admin, query):
    query("UPDATE user SET joined = '2020-02-03 04:05:06' WHERE username = 'other'")
    data = client.get("/admin").get_data(as_text=True)
    assert "<h1>Admin</h1>" in data
    test_row = data.split('href="/user/test">test</a>', 1)[1].split("</tr>", 1)[0]
    other_row = data.split('href="/user/other">other</a>', 1)[1].split("</tr>", 1)[0]
    assert "<td>admin</td>" in test_row and "<td>1</td>" in test_row
    assert "<td>author</td>" in other_row and "<td>0</td>" in other_row
    assert "2020-02-03" in other_row and "never" in other_row
    assert "Suspend" not in test_row and "Suspend" in other_row
    assert 'href="/admin">Admin</a>' in data


def test_admin_page_is_paginated(client, admin, query, monkeypatch):
    monkeypatch.setattr("flaskr.admin.USERS_PER_PAGE", 1)
    assert 'href="/admin?page=2"' in client.get("/admin").get_data(as_text=True)
    assert b'href="/user/other"' in client.get("/admin").data
    assert b'href="/user/test"' in client.get("/admin?page=2").data
    assert client.get("/admin?page=3").status_code == 404


def test_suspension_ends_sessions_at_once_and_keeps_the_writing(app, client, admin, query, caplog):
    victim = other_client(app)
    query("INSERT INTO post (title, body, author_id) VALUES ('kept', 'b', 2)")
    cookie = victim.get_cookie("session").value
    assert logged_in_as(victim) == "other"

    with caplog.at_level(logging.INFO, logger="flaskr"):
        response = client.post("/admin/users/2/suspend")
    assert response.headers["Location"] == "/admin"
    assert "admin 'test' suspended 'other'" in caplog.text

    # The copied cookie, replayed, is a visitor's.
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    assert logged_in_as(replay) is None
    assert query("SELECT COUNT(*) FROM user_session WHERE user_id = 2") == [(0,)]
    # They cannot log in, and are told why.
    response = app.test_client().post(
        "/auth/login", data={"username": "other", "password": "other"}
    )
    assert response.status_code == 403
    assert b"This account is suspended" in response.data
    # A wrong password says nothing of the suspension.
    response = app.test_client().post("/auth/login", data={"username": "other", "password": "x"})
    assert b"Incorrect password." in response.data
    # Their posts stay.
    assert b"kept" in app.test_client().get("/").data
    assert "(suspended)" in client.get("/admin").get_data(as_text=True)


def test_reinstated_user_logs_in_again(app, client, admin, caplog):
    client.post("/admin/users/2/suspend")
    with caplog.at_level(logging.INFO, logger="flaskr"):
        client.post("/admin/users/2/reinstate")
    assert "admin 'test' reinstated 'other'" in caplog.text
    assert logged_in_as(other_client(app)) == "other"


def test_admins_cannot_suspend_or_delete_themselves(client, admin, snapshot):
    before = snapshot()
    for action in ("suspend", "delete", "reinstate"):
        response = client.post(f"/admin/users/1/{action}")
        assert response.status_code == 400
        assert b"Admins cannot do this to their own account." in response.data
    assert snapshot() == before


def test_actions_on_missing_users_are_404(client, admin):
    for action in ("suspend", "delete", "reset-link"):
        assert client.post(f"/admin/users/99/{action}").status_code == 404


def test_delete_user_removes_everything_they_wrote(app, client, admin, query, caplog):
    query("INSERT INTO post (title, body, author_id) VALUES ('theirs', 'b', 2)")
    query("INSERT INTO comment (post_id, author_id, body) VALUES (1, 2, 'their comment')")
    query("INSERT INTO post_like (post_id, user_id) VALUES (1, 2)")
    other_client(app)
    with caplog.at_level(logging.INFO, logger="flaskr"):
        response = client.post("/admin/users/2/delete")
    assert response.headers["Location"] == "/admin"
    assert "admin 'test' deleted 'other'" in caplog.text
    assert query("SELECT COUNT(*) FROM user WHERE id = 2") == [(0,)]
    for table, column in (
        ("post", "author_id"),
        ("comment", "author_id"),
        ("post_like", "user_id"),
        ("user_session", "user_id"),
    ):
        assert query(f"SELECT COUNT(*) FROM {table} WHERE {column} = 2") == [(0,)]
    assert query("SELECT COUNT(*) FROM post") == [(1,)]


def test_admin_deletes_any_post_and_comment_but_edits_none(client, admin, query, caplog):
    query("INSERT INTO post (title, body, author_id) VALUES ('spam', 'b', 2)")
    query("INSERT INTO comment (post_id, author_id, body) VALUES (2, 2, 'more spam')")
    page = client.get("/2/spam").get_data(as_text=True)
    assert "Delete post (admin)" in page and "Delete comment" in page
    assert client.get("/2/update").status_code == 403
    with caplog.at_level(logging.INFO, logger="flaskr"):
        assert client.post("/comment/1/delete").status_code == 302
        assert client.post("/2/delete").headers["Location"] == "/"
    assert query("SELECT COUNT(*) FROM post WHERE id = 2") == [(0,)]
    assert "admin 'test' deleted the comment '1 on post 2'" in caplog.text
    assert "admin 'test' deleted the post '2 by other'" in caplog.text


def test_authors_see_no_admin_delete_on_others_posts(client, auth, query):
    query("INSERT INTO post (title, body, author_id) VALUES ('theirs', 'b', 2)")
    auth.login()
    page = client.get("/2/theirs").get_data(as_text=True)
    assert "Delete post (admin)" not in page
    assert client.post("/2/delete").status_code == 403


def make_reset_link(client, user_id=2):
    """Have the admin make a reset link; return its path."""
    page = client.post(f"/admin/users/{user_id}/reset-link").get_data(as_text=True)
    url = page.split('id="new-link-url" value="', 1)[1].split('"', 1)[0]
    assert url.startswith("http://localhost/account/reset/")
    return url.removeprefix("http://localhost")


def test_reset_link_shown_once_and_stored_hashed(client, admin, query, caplog):
    with caplog.at_level(logging.INFO, logger="flaskr"):
        path = make_reset_link(client)
    assert "admin 'test' made a password reset link for 'other'" in caplog.text
    token = path.rsplit("/", 1)[1]
    assert query("SELECT token_hash, kind, user_id, created_by FROM one_time_link") == [
        (hash_token(token), "reset", 2, 1)
    ]
    assert token not in client.get("/admin").get_data(as_text=True)


def test_reset_password_command_prints_a_link(runner, query):
    result = runner.invoke(args=["reset-password", "other"])
    lines = result.output.splitlines()
    assert lines[0] == "Password reset link for other (works once, within 24 hours):"
    assert lines[1].startswith("/account/reset/")
    assert query("SELECT user_id, created_by FROM one_time_link") == [(2, None)]
    assert runner.invoke(args=["reset-password", "nobody"]).exit_code == 1


def test_reset_password_command_uses_site_url(make_app):
    app = make_app(SITE_URL="https://blog.example.org")
    with app.app_context():
        from flaskr.db import get_db, init_db

        init_db()
        get_db().execute("INSERT INTO user (username, password) VALUES ('x', 'y')")
    output = app.test_cli_runner().invoke(args=["reset-password", "x"]).output
    assert output.splitlines()[1].startswith("https://blog.example.org/account/reset/")


def test_invite_link_is_made_and_logged(client, admin, query, caplog):
    with caplog.at_level(logging.INFO, logger="flaskr"):
        page = client.post("/admin/invites").get_data(as_text=True)
    assert "admin 'test' made an invite link" in caplog.text
    assert 'value="http://localhost/auth/register/invite/' in page
    assert query("SELECT kind, user_id, created_by FROM one_time_link") == [("invite", None, 1)]


def test_site_settings_change_title_description_and_registration(app, client, admin, caplog):
    with caplog.at_level(logging.INFO, logger="flaskr"):
        response = client.post(
            "/admin/settings", data={"title": " Owl Notes ", "description": "All about owls."}
        )
    assert response.headers["Location"] == "/admin"
    assert "admin 'test' changed the site settings" in caplog.text
    visitor = app.test_client()
    page = visitor.get("/").get_data(as_text=True)
    assert " - Owl Notes</title>" in page
    assert 'class="brand" href="/">Owl Notes</a>' in page
    assert '<meta name="description" content="All about owls.">' in page
    assert 'title="Owl Notes (Atom)"' in page
    assert "Register" not in page
    assert visitor.get("/auth/register").status_code == 403
    assert feedparser.parse(visitor.get("/feed.atom").data).feed.title == "Owl Notes"
    assert feedparser.parse(visitor.get("/tag/x/feed.rss").data).feed.get("title") is None
    feed = feedparser.parse(visitor.get("/user/test/feed.rss").data)
    assert feed.feed.title == "Owl Notes: test"
    # And back.
    client.post(
        "/admin/settings",
        data={"title": "Flaskr", "description": "", "registration_open": "1"},
    )
    page = visitor.get("/").get_data(as_text=True)
    assert app.config["SITE_DESCRIPTION"] in page
    assert visitor.get("/auth/register").status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": ""}, "Site title is required."),
        ({"title": "   "}, "Title and description must be one line each."),
        ({"title": "a\nb"}, "Title and description must be one line each."),
        ({"title": "x" * 101}, "Site title must be at most 100 characters."),
        ({"title": "t", "description": "\x00"}, "Description must not contain NUL characters."),
    ],
)
def test_site_settings_refuse_bad_values(client, admin, snapshot, data, message):
    before = snapshot()
    response = client.post("/admin/settings", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'<p id="settings-error" class="field-error">{message}</p>' in page
    assert 'aria-invalid="true" aria-describedby="settings-error"' in page
    assert snapshot() == before


def test_database_setting_overrides_closed_registration_config(make_app):
    app = make_app(REGISTRATION_OPEN=False)
    with app.app_context():
        from flaskr.db import get_db, init_db

        init_db()
        get_db().execute("INSERT INTO site_setting (name, value) VALUES ('registration_open', '1')")
    assert app.test_client().get("/auth/register").status_code == 200


def test_delete_user_removes_their_images(app, client, admin, query):
    names = [f"{n:032x}.png" for n in (1, 2, 3)]
    for name in names:
        query(
            "INSERT INTO image (name, type, data) VALUES (?, 'image/png', ?)", (name, image_bytes())
        )
    query("INSERT INTO post (title, body, author_id, image) VALUES ('p', 'b', 2, ?)", (names[0],))
    query("UPDATE user SET avatar = ? WHERE id = 2", (names[1],))
    client.post("/admin/users/2/delete")
    # Another user's image stays.
    assert stored_names(app) == [names[2]]
