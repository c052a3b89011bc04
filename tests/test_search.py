import pytest
from listing import titles
from tutorial import make_tutorial_database

from flaskr.db import get_db
from flaskr.search import MAX_TERMS, match_expression, search_terms


def add(app, *posts):
    """Insert (title, body) posts the tutorial's way, a minute apart."""
    with app.app_context():
        get_db().executemany(
            "INSERT INTO post (title, body, author_id, created) VALUES (?, ?, 1, ?)",
            [
                (title, body, f"2019-01-01 00:{k:02d}:00")
                for k, (title, body) in enumerate(posts, start=1)
            ],
        )


def found(client, q):
    response = client.get("/search", query_string={"q": q})
    assert response.status_code == 200
    return titles(response.data)


def test_a_word_of_a_body_finds_its_post(app, client):
    add(app, ("Gardening", "Tomatoes need sun."), ("Cooking", "Soup needs salt."))
    assert found(client, "tomatoes") == ["Gardening"]
    assert found(client, "TOMATO") == ["Gardening"]  # any case, word stems
    assert found(client, "soup salt") == ["Cooking"]  # every word must match
    assert found(client, "soup tomatoes") == []
    assert found(client, "cooking") == ["Cooking"]  # titles too


def test_posts_inserted_the_tutorial_way_are_found(client):
    # data.sql inserts 'test title' / 'test\nbody' straight into post.
    assert found(client, "body") == ["test title"]


def test_edits_and_deletes_keep_the_index_in_step(client, auth):
    auth.login()
    client.post("/1/update", data={"title": "renamed", "body": "fresh words"})
    assert found(client, "body") == []
    assert found(client, "fresh") == ["renamed"]
    client.post("/create", data={"title": "created", "body": "fresh too"})
    assert sorted(found(client, "fresh")) == ["created", "renamed"]
    client.post("/1/delete")
    assert found(client, "fresh") == ["created"]


def test_best_match_first(app, client):
    add(
        app,
        ("Mentions once", "A long text about many things, and once about owls, among others."),
        ("Owls", "Owls, owls, owls."),
        ("Nothing", "Cats."),
    )
    assert found(client, "owls") == ["Owls", "Mentions once"]


def test_results_are_paginated(app, client):
    add(app, *[(f"match {k}", "needle") for k in range(7)])
    first = client.get("/search?q=needle")
    assert len(titles(first.data)) == 5
    assert b'href="/search?page=2&amp;q=needle"' in first.data
    second = client.get("/search?q=needle&page=2")
    assert len(titles(second.data)) == 2
    assert b'href="/search?page=1&amp;q=needle"' in second.data
    assert sorted(titles(first.data) + titles(second.data)) == [f"match {k}" for k in range(7)]
    assert client.get("/search?q=needle&page=3").status_code == 404


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '"body',
        "NEAR(",
        "NEAR(body test, 2)",
        "*",
        "bo*",
        "body AND",
        "OR",
        "NOT body",
        "-body",
        "title:body",
        "{title body}: x",
        "^body",
        "body)",
        "'; DROP TABLE post; --",
        "\x00",
        "x" * 5000,
        "body " * 1000,
        "ünïcödé 日本語",
    ],
)
def test_any_query_is_answered(client, q):
    response = client.get("/search", query_string={"q": q})
    assert response.status_code == 200
    assert b"Search" in response.data


def test_invalid_utf8_is_answered(client):
    assert client.get("/search?q=%ff%fe%00body").status_code == 200


@pytest.mark.parametrize("q", ["", "   ", "*", '""', "-:"])
def test_a_query_without_words_shows_the_form_only(client, q):
    response = client.get("/search", query_string={"q": q})
    assert response.status_code == 200
    assert b'<input type="search" name="q" id="q"' in response.data
    assert titles(response.data) == []
    assert b"No posts match" not in response.data


def test_no_match_says_so(client):
    response = client.get("/search?q=absent")
    assert b"No posts match \xe2\x80\x9cabsent\xe2\x80\x9d." in response.data


def test_the_search_box_is_in_every_page(client):
    page = client.get("/").data
    assert b'<form class="site-search" action="/search" method="get" role="search">' in page
    assert b'<label for="site-search-q"' in page


def test_search_terms_and_expression():
    assert search_terms('a "b" NEAR(c, d*) e:f') == ["a", "b", "NEAR", "c", "d", "e", "f"]
    assert len(search_terms("w " * 100)) == MAX_TERMS
    assert match_expression(["a", 'b"c']) == '"a" "b""c"'


def test_the_migration_indexes_existing_posts(make_app, tmp_path):
    make_tutorial_database(tmp_path / "flaskr.sqlite")
    app = make_app()
    assert app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    assert found(app.test_client(), "world") == ["first"]
