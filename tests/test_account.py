"""Each user's account: password changes, sessions, reset links and invites."""

import io
import json
import re
import zipfile

import pytest
from images import image_bytes, stored_names
from PIL import Image

from flaskr.account import describe_agent
from flaskr.db import utc_time

NEW = "a new secret"
CHANGE = {"current_password": "test", "new_password": NEW, "repeat_password": NEW}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def logged_in_as(client):
    """The name in the page header of this browser, or None for a visitor."""
    found = re.search(r'class="who"[^>]*>([^<]+)<', client.get("/").get_data(as_text=True))
    return found and found[1]


def browser(app, username="test", password=None, user_agent=FIREFOX):
    """Another browser, logged in as username (whose password is the username by default)."""
    client = app.test_client()
    client.post(
        "/auth/login",
        data={"username": username, "password": password or username},
        headers={"User-Agent": user_agent},
    )
    return client


def reset_path(runner, name="other"):
    """Make a reset link by command and return its path."""
    return runner.invoke(args=["reset-password", name]).output.splitlines()[1]


def invite_path(runner, query):
    """Make an invite link (as an admin would) and return its path."""
    runner.invoke(args=["set-role", "test", "admin"])
    from flaskr.admin import INVITE, make_link

    with runner.app.app_context():
        from flaskr.db import get_db

        return f"/auth/register/invite/{make_link(get_db(), INVITE)}"


def test_header_name_links_to_settings(client, auth):
    auth.login()
    assert b'<a class="who" href="/settings"' in client.get("/").data


def test_settings_needs_a_login(client):
    assert client.get("/settings").headers["Location"] == "/auth/login"


@pytest.mark.parametrize(
    ("user_agent", "described"),
    [
        (FIREFOX, "Firefox on Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120.0 Mobile",
            "Chrome on Android",
        ),
        ("", "Unknown browser"),
    ],
)
def test_describe_agent(user_agent, described):
    assert describe_agent(user_agent) == described


def test_sessions_are_listed_with_browser_address_and_this_session(app, client, auth, query):
    browser(app)
    client.post(
        "/auth/login",
        data={"username": "test", "password": "test"},
        headers={"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Chrome/120 Safari/1"},
    )
    page = client.get("/settings").get_data(as_text=True)
    assert "Firefox on Linux" in page
    assert 'Chrome on macOS</strong>\n          <span class="status">(this session)' in page
    assert page.count("from 127.0.0.1") == 2
    assert query("SELECT user_agent FROM user_session ORDER BY id")[0] == (FIREFOX,)


def test_last_seen_is_refreshed_at_most_once_a_minute(app, client, auth, query):
    auth.login()
    query("UPDATE user_session SET last_seen = '2000-01-01 00:00:00'")
    client.get("/")
    (seen,) = query("SELECT last_seen FROM user_session")[0]
    assert seen.year > 2000
    query("UPDATE user_session SET last_seen = ?", (utc_time(-30),))
    before = query("SELECT last_seen FROM user_session")
    client.get("/")
    assert query("SELECT last_seen FROM user_session") == before


def test_password_change_ends_every_other_session(app, client, auth, query, caplog):
    auth.login()
    other_browser = browser(app)
    stolen = other_browser.get_cookie("session").value
    someone_else = browser(app, "other")

    response = client.post("/settings/password", data=CHANGE)
    assert response.headers["Location"] == "/settings"
    assert "password changed by 'test'" in caplog.text
    # This session continues; the other one, and its copied cookie, are anonymous.
    assert logged_in_as(client) == "test"
    assert logged_in_as(other_browser) is None
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert logged_in_as(replay) is None
    assert logged_in_as(someone_else) == "other"
    # The new password logs in, the old one no longer.
    assert logged_in_as(browser(app, password=NEW)) == "test"
    assert logged_in_as(browser(app)) is None


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({**CHANGE, "current_password": "wrong"}, "current_password", "Incorrect password."),
        ({**CHANGE, "new_password": "short"}, "new_password", "at least 8 characters"),
        ({**CHANGE, "new_password": "password"}, "new_password", "most common"),
        ({**CHANGE, "new_password": "", "repeat_password": ""}, "new_password", "is required"),
        ({**CHANGE, "repeat_password": "different"}, "repeat_password", "differ"),
        ({**CHANGE, "current_password": "\x00"}, "current_password", "NUL"),
    ],
)
def test_password_change_errors_are_beside_their_fields(
    client, auth, snapshot, data, field, message
):
    auth.login()
    before = snapshot()
    response = client.post("/settings/password", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = re.search(rf'<p id="{field}-error" class="field-error">([^<]*)</p>', page)
    assert message in error[1]
    tag = re.search(rf'<input type="password" name="{field}"[^>]*>', page)[0]
    assert 'aria-invalid="true"' in tag and f"{field}-error" in tag
    assert snapshot() == before


def test_log_out_one_session_and_all_others(app, client, auth):
    first, second = browser(app), browser(app)
    auth.login()
    page = client.get("/settings").get_data(as_text=True)
    ids = re.findall(r'action="/settings/sessions/(\d+)/logout"', page)
    assert len(ids) == 3
    # Sessions are numbered as they begin: the smallest is the first browser's.
    response = client.post(f"/settings/sessions/{min(ids, key=int)}/logout")
    assert response.headers["Location"] == "/settings"
    assert logged_in_as(first) is None
    assert logged_in_as(client) == "test" and logged_in_as(second) == "test"
    response = client.post("/settings/sessions/logout-others")
    assert response.headers["Location"] == "/settings"
    assert logged_in_as(client) == "test"
    assert logged_in_as(first) is None and logged_in_as(second) is None


def test_logging_out_this_session_from_the_list(client, auth):
    auth.login()
    page = client.get("/settings").get_data(as_text=True)
    (own,) = re.findall(r'action="/settings/sessions/(\d+)/logout"', page)
    assert client.post(f"/settings/sessions/{own}/logout").headers["Location"] == "/"
    assert logged_in_as(client) is None


def test_reset_link_sets_a_password_once_and_ends_sessions(app, client, runner, query):
    victim = browser(app, "other")
    path = reset_path(runner)
    page = client.get(path).get_data(as_text=True)
    assert "<strong>other</strong>" in page
    response = client.post(path, data={"new_password": NEW, "repeat_password": NEW})
    assert response.headers["Location"] == "/auth/login"
    assert logged_in_as(victim) is None
    assert logged_in_as(browser(app, "other", NEW)) == "other"
    # Works once.
    response = client.post(
        path, data={"new_password": "another one", "repeat_password": "another one"}
    )
    assert response.status_code == 404
    assert b"This password reset link is not valid" in response.data
    assert client.get(path).status_code == 404
    assert query("SELECT COUNT(*) FROM one_time_link") == [(0,)]


def test_reset_link_expires_after_24_hours(client, runner, query, snapshot):
    path = reset_path(runner)
    (expires,) = query("SELECT expires FROM one_time_link")[0]
    (created,) = query("SELECT created FROM one_time_link")[0]
    assert (expires - created).total_seconds() == 24 * 60 * 60
    query("UPDATE one_time_link SET expires = ?", (utc_time(-1),))
    before = snapshot()
    response = client.post(path, data={"new_password": NEW, "repeat_password": NEW})
    assert response.status_code == 404
    assert snapshot() == before


def test_reset_applies_the_password_policy(client, runner, snapshot):
    path = reset_path(runner)
    before = snapshot()
    response = client.post(path, data={"new_password": "other", "repeat_password": "other"})
    assert response.status_code == 400
    assert b'id="new_password-error"' in response.data
    assert snapshot() == before


def test_reset_link_used_twice_at_once_sets_one_password(client, runner, monkeypatch, query):
    path = reset_path(runner)
    row = {"user_id": 2, "username": "other"}
    # Another request spends the link between this one's check and its write.
    query("DELETE FROM one_time_link")
    monkeypatch.setattr("flaskr.account.find_link", lambda db, kind, token: row)
    response = client.post(path, data={"new_password": NEW, "repeat_password": NEW})
    assert response.status_code == 404
    assert query("SELECT password FROM user WHERE id = 2")[0][0].startswith("pbkdf2")


def test_invite_lets_one_person_register_while_closed(make_app, app, runner, query):
    client = app.test_client()
    query("INSERT INTO site_setting (name, value) VALUES ('registration_open', '0')")
    path = invite_path(runner, query)
    assert client.get("/auth/register").status_code == 403
    assert client.get(path).status_code == 200
    response = client.post(path, data={"username": "guest", "password": "long enough"})
    assert response.headers["Location"] == "/auth/login"
    assert query("SELECT COUNT(*) FROM user WHERE username = 'guest'") == [(1,)]
    # Used once: the second person is refused.
    response = client.post(path, data={"username": "second", "password": "long enough"})
    assert response.status_code == 403
    assert b"This invite link is not valid" in response.data
    assert query("SELECT COUNT(*) FROM user WHERE username = 'second'") == [(0,)]


def test_invite_expires_after_7_days(app, runner, query, snapshot):
    query("INSERT INTO site_setting (name, value) VALUES ('registration_open', '0')")
    path = invite_path(runner, query)
    ((expires, created),) = query("SELECT expires, created FROM one_time_link")
    assert abs((expires - created).total_seconds() - 7 * 24 * 60 * 60) <= 1
    query("UPDATE one_time_link SET expires = ?", (utc_time(-1),))
    before = snapshot()
    response = app.test_client().post(path, data={"username": "late", "password": "long enough"})
    assert response.status_code == 403
    assert snapshot() == before


def test_invite_raced_by_another_registration(app, runner, query, monkeypatch):
    query("INSERT INTO site_setting (name, value) VALUES ('registration_open', '0')")
    path = invite_path(runner, query)
    query("DELETE FROM one_time_link")
    monkeypatch.setattr("flaskr.admin.link_problem", lambda kind, token: None)
    response = app.test_client().post(path, data={"username": "late", "password": "long enough"})
    assert response.status_code == 403
    assert b"This invite link has been used already." in response.data
    assert query("SELECT COUNT(*) FROM user WHERE username = 'late'") == [(0,)]


def test_last_login_is_recorded(auth, query):
    assert query("SELECT last_login FROM user WHERE id = 1") == [(None,)]
    auth.login()
    assert query("SELECT last_login IS NOT NULL FROM user WHERE id = 1") == [(1,)]


def upload(client, data, image=None):
    """Post the profile form, with an avatar file when image (bytes) is given."""
    if image is not None:
        data = {**data, "avatar": (io.BytesIO(image), "me.png")}
    return client.post("/settings/profile", data=data, content_type="multipart/form-data")


def test_display_name_shows_in_bylines_and_falls_back_to_the_username(client, auth, query):
    auth.login()
    response = upload(client, {"display_name": " Tess Tester ", "bio": ""})
    assert response.headers["Location"] == "/settings"
    assert query("SELECT display_name FROM user WHERE id = 1") == [("Tess Tester",)]
    assert b"by Tess Tester on 2018-01-01" in client.get("/").data
    upload(client, {"display_name": "", "bio": ""})
    assert b"by test on 2018-01-01" in client.get("/").data


def test_bio_is_plain_text_with_links_on_author_and_post_pages(app, client, auth):
    auth.login()
    upload(client, {"display_name": "Tess", "bio": "I *write*. <b>x</b> https://example.org"})
    visitor = app.test_client()
    for path in ("/user/test", "/1/test-title"):
        page = visitor.get(path).get_data(as_text=True)
        assert "I *write*. &lt;b&gt;x&lt;/b&gt;" in page
        assert 'href="https://example.org"' in page
    assert "Tess <span" in visitor.get("/user/test").get_data(as_text=True)


def test_avatar_is_cropped_square_small_and_shown(app, client, auth, query):
    auth.login()
    upload(client, {"display_name": "", "bio": ""}, image_bytes("PNG", size=(400, 200)))
    ((name,),) = query("SELECT avatar FROM user WHERE id = 1")
    assert name.endswith(".jpg")
    with client.get(f"/uploads/{name}") as response:
        stored = Image.open(io.BytesIO(response.data))
        assert (stored.format, stored.size) == ("JPEG", (192, 192))
    visitor = app.test_client()
    for path in ("/user/test", "/1/test-title"):
        assert f'src="/uploads/{name}"' in visitor.get(path).get_data(as_text=True)
    # A new avatar replaces the old image; removing leaves none.
    upload(client, {"display_name": "", "bio": ""}, image_bytes("GIF"))
    ((second,),) = query("SELECT avatar FROM user WHERE id = 1")
    assert stored_names(app) == [second]
    upload(client, {"display_name": "", "bio": "", "remove_avatar": "1"})
    assert query("SELECT avatar FROM user WHERE id = 1") == [(None,)]
    assert stored_names(app) == []


@pytest.mark.parametrize(
    ("data", "image", "message"),
    [
        ({"display_name": "d" * 65}, None, "Display name must be at most 64 characters."),
        ({"display_name": "a\nb"}, None, "Display name must be one line."),
        ({"bio": "b" * 501}, None, "Bio must be at most 500 characters."),
        ({}, b"not an image", "The image must be a PNG, JPEG, GIF or WebP file."),
    ],
)
def test_profile_refuses_bad_input_and_writes_nothing(client, auth, snapshot, data, image, message):
    auth.login()
    before = snapshot()
    response = upload(client, data, image)
    assert response.status_code == 400
    assert f'<p id="profile-error" class="field-error" role="alert">{message}</p>' in (
        response.get_data(as_text=True)
    )
    assert snapshot() == before


def test_export_is_a_zip_of_markdown_images_and_comments(app, client, auth, query):
    auth.login()
    client.post(
        "/create",
        data={
            "title": "Owls at night",
            "body": "They *hoot*.",
            "tags": "Birds, night",
            "image": (io.BytesIO(image_bytes("PNG")), "owl.png"),
        },
        content_type="multipart/form-data",
    )
    client.post("/1/comment", data={"body": "my comment"})
    query("INSERT INTO post (title, body, author_id) VALUES ('not mine', 'x', 2)")
    with client.get("/settings/export") as response:
        assert response.mimetype == "application/zip"
        assert "attachment" in response.headers["Content-Disposition"]
        data = response.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        assert names == {
            "posts/1-test-title.md",
            "posts/2-owls-at-night.md",
            "images/2.png",
            "comments.json",
            "profile.json",
        }
        text = archive.read("posts/2-owls-at-night.md").decode()
        assert text.startswith('---\nid: 2\ntitle: "Owls at night"\nauthor: "test"\n')
        assert 'state: "published"\n' in text and 'tags: ["birds", "night"]\n' in text
        assert 'image: "images/2.png"\n' in text and text.endswith("---\n\nThey *hoot*.")
        assert archive.read("images/2.png").startswith(b"\x89PNG")
        (comment,) = json.loads(archive.read("comments.json"))
        assert (comment["post_id"], comment["body"]) == (1, "my comment")
        assert json.loads(archive.read("profile.json"))["username"] == "test"


def test_export_leaves_out_a_missing_image_file(app, client, auth, query):
    auth.login()
    query("UPDATE post SET image = ? WHERE id = 1", (f"{1:032x}.png",))
    with client.get("/settings/export") as response:
        data = response.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "image: null" in archive.read("posts/1-test-title.md").decode()


def test_delete_account_removes_everything_and_frees_the_name(app, client, auth, query, caplog):
    auth.login()
    other = browser(app)
    query("INSERT INTO post (title, body, author_id) VALUES ('theirs', 'x', 2)")
    client.post("/2/comment", data={"body": "mine"})
    client.post("/2/like")
    response = client.post("/settings/delete", data={"delete_password": "test", "confirm": "1"})
    assert response.headers["Location"] == "/"
    assert "account deleted by 'test'" in caplog.text
    assert logged_in_as(client) is None and logged_in_as(other) is None
    for table, column in (
        ("post", "author_id"),
        ("comment", "author_id"),
        ("post_like", "user_id"),
    ):
        assert query(f"SELECT COUNT(*) FROM {table} WHERE {column} = 1") == [(0,)]
    assert query("SELECT username FROM user") == [("other",)]
    response = client.post("/auth/register", data={"username": "test", "password": "long enough"})
    assert response.headers["Location"] == "/auth/login"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"delete_password": "wrong", "confirm": "1"}, "delete_password", "Incorrect password."),
        ({"delete_password": "test"}, "confirm", "Tick the box to confirm."),
        ({"delete_password": "\x00", "confirm": "1"}, "delete_password", "NUL"),
    ],
)
def test_delete_account_needs_password_and_confirmation(
    client, auth, snapshot, data, field, message
):
    auth.login()
    before = snapshot()
    response = client.post("/settings/delete", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in re.search(rf'<p id="{field}-error" class="field-error">([^<]*)</p>', page)[1]
    assert f'aria-describedby="{field}-error"' in page
    assert snapshot() == before


def test_export_names_each_post_state(client, auth, query):
    auth.login()
    query("UPDATE post SET draft = 1 WHERE id = 1")
    query(
        "INSERT INTO post (title, body, author_id, created) VALUES ('later', '', 1, '2999-01-01')"
    )
    with client.get("/settings/export") as response:
        data = response.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert 'state: "draft"\n' in archive.read("posts/1-test-title.md").decode()
        assert 'state: "scheduled"\n' in archive.read("posts/2-later.md").decode()
