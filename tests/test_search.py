import re

import pytest
from listing import add_posts, titles
from tutorial import make_tutorial_database

from flaskr import search
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


def count_line(client, q):
    """The line above the results saying how many posts match."""
    response = client.get("/search", query_string={"q": q})
    assert response.status_code == 200
    return re.search(r'<p class="search-count">(.*?)</p>', response.data.decode()).group(1)


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


def test_the_best_match_comes_first_even_when_older(app, client):
    add(
        app,
        ("Owls", "Owls, owls, owls."),
        ("Mentions once", "A long text about many things, and once about owls, among others."),
        *[(f"filler {k}", "Cats.") for k in range(4)],
    )
    assert found(client, "owls") == ["Owls", "Mentions once"]


def test_the_count_of_matches_is_shown(app, client):
    add(app, ("One", "needle"), ("Two", "needle, hay"), ("Three", "hay"))
    assert count_line(client, "needle") == "2 posts match “needle”."
    assert count_line(client, "hay needle") == "1 post matches “hay needle”."
    assert b"search-count" not in client.get("/search?q=absent").data


def test_at_most_a_thousand_newest_matches_are_ranked(app, client):
    # The oldest post is the best match, but 1,000 newer ones match too; 300 posts newer
    # still do not, so "needle" is rare among the newest posts and ranks.
    add(app, ("oldest, best", "needle needle needle needle needle"), ("older, good", "needle " * 4))
    add_posts(app, 998, body="needle in the hay {k}")
    add_posts(app, 300, body="hay")
    assert count_line(client, "needle") == "1,000 posts match “needle”."

    add(app, ("newest match", "needle in the hay 0"))
    assert count_line(client, "needle") == (
        "More than 1,000 posts match “needle”: the best of the newest 1,000 are shown."
    )
    first = client.get("/search?q=needle").data
    assert titles(first) == ["older, good", "newest match", "post 998", "post 997", "post 996"]
    # Equal matches are newest first; 200 pages of five hold the 1,000 ranked.
    last = client.get("/search?q=needle&page=200").data
    assert titles(last) == ["post 5", "post 4", "post 3", "post 2", "post 1"]
    assert b'rel="next"' not in last
    assert client.get("/search?q=needle&page=201").status_code == 404


def test_ranking_reads_a_bounded_number_of_rows(app, client, monkeypatch):
    monkeypatch.setattr(search, "MAX_RANK_ROWS", 2)
    add(app, ("best, oldest", "owl owl owl"), *[(f"owl {k}", "owl, a bird") for k in range(3)])
    add(app, *[(f"filler {k}", "hay") for k in range(10)])
    # Only the newest two matches were scored; the others follow, newest first.
    assert found(client, "owl") == ["owl 2", "owl 1", "owl 0", "best, oldest"]


def test_the_rarest_words_drive_the_ranking(app, client, monkeypatch):
    monkeypatch.setattr(search, "MAX_RANKING_TERMS", 1)
    add(
        app,
        ("Alpha", "alpha alpha alpha alpha zebra"),
        ("Zebra", "alpha zebra zebra zebra hay"),
        *[(f"alpha {k}", "alpha hay") for k in range(4)],
        *[(f"filler {k}", "hay") for k in range(10)],
    )
    assert found(client, "alpha zebra") == ["Zebra", "Alpha"]
    assert found(client, "alpha") == ["Alpha", "alpha 3", "alpha 2", "alpha 1", "alpha 0"]


def test_a_word_in_most_posts_must_match_but_does_not_rank(app, client):
    add(
        app,
        ("Oldest", "common common common"),
        ("Middle", "common"),
        ("Newest", "common word"),
        ("Zebra", "zebra"),
    )
    # "common" is in three posts of five: ranking by it would put "Oldest" first.
    assert found(client, "common") == ["Newest", "Middle", "Oldest"]
    assert found(client, "common zebra") == []
    assert found(client, "zebra") == ["Zebra"]


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


@pytest.fixture
def hostile_posts(app):
    """Posts beside the tutorial's ("test title" / "test\nbody") for hostile queries."""
    add(
        app,
        ("Bo", "bo is a short word, a name"),
        ("Near", "near the body of water, and sand or stones, not far"),
        ("Accents", "ünïcödé 日本語 text"),
        ("Title", "title: x (in brackets)"),
    )


# FTS5 syntax in a query is read as plain words: each query finds exactly the posts that
# hold all its words, never what the syntax would have selected (nor an error).
HOSTILE_QUERIES = [
    ('"', []),
    ('"body', ["Near", "test title"]),
    ('body"', ["Near", "test title"]),
    ('"body" "water"', ["Near"]),
    ("NEAR(", ["Near"]),
    ("NEAR(body water)", ["Near"]),
    ("near/body", ["Near"]),
    ("*", []),
    ("bo*", ["Bo"]),  # the word "bo", not a prefix: "body" is not found
    ("body AND", ["Near"]),  # "and" is a word the tutorial post lacks
    ("OR", ["Near"]),
    ("test OR water", []),
    ("NOT body", ["Near"]),
    ("body NOT water", ["Near"]),
    ("-body", ["Near", "test title"]),
    ("body -water", ["Near"]),
    ("title:body", ["test title"]),  # no column filter: "title" and "body" anywhere
    ("title:x", ["Title"]),
    ("{title body}: test", ["test title"]),
    ("^body", ["Near", "test title"]),  # not "body as the first word"
    ("body)", ["Near", "test title"]),
    ("(", []),
    ("'; DROP TABLE post; --", []),
    ("\x00", []),
    ("x" * 5000, []),
    ("body " * 200, ["Near", "test title"]),  # 1,000 characters
    ("ünïcödé 日本語", ["Accents"]),
    ("UNICODE", ["Accents"]),  # any case, accents or not
]


@pytest.mark.parametrize(("q", "expected"), HOSTILE_QUERIES)
def test_any_query_finds_the_posts_holding_its_words(client, hostile_posts, q, expected):
    assert sorted(found(client, q)) == expected
    assert found(client, "body") != []  # nothing was dropped


def test_invalid_utf8_is_answered(app, client):
    # Bytes that are not UTF-8 stay as their escapes, which are words like any other.
    add(app, ("Bytes", "ff fe body"))
    response = client.get("/search?q=%ff%fe%00body")
    assert response.status_code == 200
    assert titles(response.data) == ["Bytes"]


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
    assert search_terms("Owl owls OWL owl") == ["Owl", "owls"]  # each word once, any case
    assert len(search_terms("w " * 100)) == 1
    assert search_terms(" ".join(f"w{k}" for k in range(100))) == [
        f"w{k}" for k in range(MAX_TERMS)
    ]
    assert match_expression("sqlite", ["a", 'b"c']) == '"a" "b""c"'
    assert match_expression("postgresql", ["a", "b"]) == "a b"


@pytest.mark.sqlite_only
def test_the_migration_indexes_existing_posts(make_app, tmp_path):
    make_tutorial_database(tmp_path / "flaskr.sqlite")
    app = make_app()
    assert app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    assert found(app.test_client(), "world") == ["first"]
