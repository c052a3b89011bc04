import re

import pytest

from flaskr.comments import COMMENT_PAGE_QUERY
from flaskr.db import get_db


def comment(client, body, post=1):
    return client.post(f"/{post}/comment", data={"body": body})


@pytest.fixture
def comment_ids(query):
    """Return a function listing the ids of the stored comments."""
    return lambda: [row[0] for row in query("SELECT id FROM comment ORDER BY id")]


def test_comment_shows_escaped_with_author_and_date(client, auth):
    auth.login("other", "other")
    response = comment(client, "<script>alert('hi')</script> nice post")
    assert response.status_code == 302
    assert response.headers["Location"] == "/1/test-title#comment-1"

    page = client.get("/1/test-title").data.decode()
    assert "&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt; nice post" in page
    assert "<script>alert" not in page
    assert 'id="comment-1"' in page
    assert "other on " in page


def test_comments_are_oldest_first(app, client, auth):
    auth.login()
    comment(client, "first words")
    comment(client, "second words")
    page = client.get("/1/test-title").data.decode()
    assert page.index("first words") < page.index("second words")
    assert b"2 comments" in client.get("/").data


def test_visitors_see_comments_but_no_form(client, auth):
    auth.login()
    comment(client, "visible to all")
    auth.logout()
    page = client.get("/1/test-title").data
    assert b"visible to all" in page
    assert b'name="body"' not in page
    assert b"to comment." in page


def test_comment_needs_login(client, count):
    response = comment(client, "anonymous")
    assert response.headers["Location"] == "/auth/login"
    assert count("comment") == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", b"Comment is required."),
        ("   \n ", b"Comment is required."),
        ("x" * 5001, b"Comment must be at most 5000 characters."),
    ],
)
def test_comment_validation(client, auth, count, body, message):
    auth.login()
    response = comment(client, body)
    assert response.status_code == 400
    # The post's page, the message beside the field that keeps what was typed.
    page = response.data
    assert b"<h1>test title</h1>" in page
    assert b'<p id="comment-body-error" class="field-error">' + message + b"</p>" in page
    assert b'aria-invalid="true"' in page and b'aria-describedby="comment-body-error"' in page
    assert f">{body}</textarea>".encode() in page
    assert count("comment") == 0


def test_longest_comment_is_accepted(client, auth, count):
    auth.login()
    assert comment(client, "x" * 5000).status_code == 302
    assert count("comment") == 1


def test_comment_on_missing_post_is_404(client, auth, count):
    auth.login()
    assert comment(client, "hello?", post=99).status_code == 404
    assert count("comment") == 0


def register_third_user(app):
    from werkzeug.security import generate_password_hash

    with app.app_context():
        get_db().execute(
            "INSERT INTO user (username, password) VALUES ('third', ?)",
            (generate_password_hash("third-password", method="scrypt:16384:8:1"),),
        )


def test_comment_deletion_rights(app, client, auth, comment_ids):
    register_third_user(app)
    auth.login("other", "other")
    comment(client, "by other on test's post")
    auth.logout()

    auth.login("third", "third-password")
    assert b"Delete comment" not in client.get("/1/test-title").data
    response = client.post("/comment/1/delete")
    assert response.status_code == 403
    assert b"Only the comment&#39;s author or the post&#39;s author" in response.data
    assert comment_ids() == [1]
    auth.logout()

    auth.login("test", "test")  # the post's author
    assert b"Delete comment" in client.get("/1/test-title").data
    response = client.post("/comment/1/delete")
    assert response.headers["Location"] == "/1/test-title#comments"
    assert comment_ids() == []


def test_comment_author_can_delete(client, auth, comment_ids):
    auth.login("other", "other")
    comment(client, "oops")
    assert client.post("/comment/1/delete").status_code == 302
    assert comment_ids() == []


def test_delete_missing_comment_is_404(client, auth):
    auth.login()
    assert client.post("/comment/7/delete").status_code == 404


def test_delete_comment_needs_login(client, auth, comment_ids):
    auth.login()
    comment(client, "mine")
    auth.logout()
    assert client.post("/comment/1/delete").headers["Location"] == "/auth/login"
    assert comment_ids() == [1]


def test_comments_go_with_their_post(client, auth, count):
    auth.login()
    comment(client, "soon gone")
    client.post("/1/delete")
    assert count("comment") == 0


def add_comments(app, n, body="comment"):
    """Add n comments by user 2 on post 1, the k-th made k seconds after the first."""
    with app.app_context():
        get_db().executemany(
            "INSERT INTO comment (post_id, author_id, body, created) VALUES (1, 2, ?, ?)",
            [(f"{body} {k}", f"2019-01-01 00:{k // 60:02d}:{k % 60:02d}") for k in range(1, n + 1)],
        )


def shown_comments(page):
    """The ids of the comments a post page shows, in order."""
    return [int(i) for i in re.findall(r'id="comment-(\d+)"', page.decode())]


def test_a_post_page_shows_its_newest_fifty_comments_and_links_to_older_ones(app, client):
    add_comments(app, 150, '"' * 4990)
    first = client.get("/1/test-title")
    # All 150 made a 3.8 MB page; a third of them now.
    assert first.status_code == 200
    assert len(first.data) < 1_400_000
    assert shown_comments(first.data) == list(range(101, 151))  # oldest first within it
    assert b'href="/1/test-title?comments=2#comments">&larr; Older comments</a>' in first.data
    assert b"Newer comments" not in first.data

    second = client.get("/1/test-title?comments=2")
    assert shown_comments(second.data) == list(range(51, 101))
    assert b'href="/1/test-title?comments=3#comments">&larr; Older comments</a>' in second.data
    assert b'href="/1/test-title#comments">Newer comments &rarr;</a>' in second.data

    third = client.get("/1/test-title?comments=3")
    assert shown_comments(third.data) == list(range(1, 51))
    assert b"Older comments" not in third.data
    assert b'href="/1/test-title?comments=2#comments">Newer comments &rarr;</a>' in third.data

    assert client.get("/1/test-title?comments=1").data == first.data
    # The count still counts every comment.
    assert b"150 comments" in client.get("/").data


@pytest.mark.parametrize("number", ["4", "0", "-1", "x", "2.0", "9" * 5000])
def test_a_page_of_comments_past_the_last_is_404(app, client, number):
    add_comments(app, 150)
    response = client.get(f"/1/test-title?comments={number}")
    assert response.status_code == 404
    assert b"There is no such page" in response.data


def test_a_post_without_comments_has_one_page(client):
    page = client.get("/1/test-title").data
    assert b"No comments yet." in page
    assert b"Older comments" not in page
    assert client.get("/1/test-title?comments=2").status_code == 404


def test_a_new_comment_lands_on_the_first_page_at_its_anchor(app, client, auth):
    add_comments(app, 120)
    auth.login()
    response = comment(client, "the newest word")
    assert response.headers["Location"] == "/1/test-title#comment-121"
    page = client.get("/1/test-title").data
    assert b'id="comment-121"' in page
    assert shown_comments(page)[-1] == 121
    assert b"the newest word" in page
    assert b'name="body"' in page  # the comment form is still there


@pytest.mark.sqlite_only
def test_a_page_of_comments_walks_the_comment_index(app):
    with app.app_context():
        steps = [
            row[3]
            for row in get_db().execute(f"EXPLAIN QUERY PLAN {COMMENT_PAGE_QUERY}", (1, 51, 0))
        ]
    assert steps[0].startswith("SEARCH c USING INDEX comment_post_created (post_id=?)")
    assert not [step for step in steps if "TEMP B-TREE" in step]


def test_comments_show_their_paragraphs_and_links(client, auth):
    auth.login("other", "other")
    comment(client, "Lovely.\n\nMore at https://example.org/owls <i>")
    page = client.get("/1/test-title").data.decode()
    assert (
        '<div class="comment-body"><p>Lovely.</p>\n<p>More at <a href="https://example.org/owls"'
        ' rel="nofollow ugc noopener">https://example.org/owls</a> &lt;i&gt;</p></div>'
    ) in page


def test_log_in_to_comment_comes_back_to_the_post(client):
    page = client.get("/1/test-title").data.decode()
    assert '<p><a href="/1/write-comment">Log in</a> to comment.</p>' in page
    response = client.get("/1/write-comment")
    assert response.headers["Location"] == "/auth/login"
    # Where to come back is kept in the session, never in the address.
    assert "next" not in response.headers["Location"]
    login = client.post("/auth/login", data={"username": "other", "password": "other"})
    assert login.headers["Location"] == "/1/write-comment"
    assert client.get("/1/write-comment").headers["Location"] == "/1/test-title#add-comment"
    assert b'class="form" id="add-comment"' in client.get("/1/test-title").data
    assert client.get("/2/write-comment").status_code == 404
