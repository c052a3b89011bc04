import re
from html import unescape

import pytest

from flaskr import snippets
from flaskr.snippets import SNIPPET_LENGTH, make_snippet, marked, plain_text, snippet


def shown(html):
    """The text a snippet shows, without its marks."""
    return re.sub("</?mark>", "", str(html))


def test_a_snippet_is_the_text_around_the_first_match_with_the_words_marked():
    body = "Opening words. " * 40 + "The barn **owl** hunts at night; owls are quiet. " + "x " * 300
    html = snippet(body, ["owl"])
    assert html.startswith("\u2026 ") and html.endswith(" \u2026")
    assert "The barn <mark>owl</mark> hunts at night; <mark>owls</mark> are quiet." in html
    assert len(shown(html)) <= SNIPPET_LENGTH + 4
    # It starts between words, a little before the match.
    assert shown(html).startswith("\u2026 Opening") or shown(html).startswith("\u2026 words.")


def test_a_short_body_is_shown_whole_without_its_markdown_marks():
    body = "# Owls\n\n> A *quote* about [an owl](https://example.org/owl) and ![one](o.png)."
    body += "\n\n- a list"
    html = snippet(body, ["OWL"])
    assert html == ("<mark>Owls</mark> A quote about an <mark>owl</mark> and one. a list")


def test_a_body_without_the_words_shows_its_start():
    body = "Nothing matches here. " * 30
    html = snippet(body, ["title"])
    assert html.startswith("Nothing matches here.") and html.endswith(" \u2026")
    assert "<mark>" not in html
    assert snippet("Short.", []) == "Short."


@pytest.mark.parametrize(
    "body",
    [
        '<script>alert("owl")</script>',
        "owl <img src=x onerror=alert(1)> &amp; &lt;",
        "[owl](javascript:alert(1)) \"'",
    ],
)
def test_snippets_are_safe_whatever_the_text(body):
    html = str(snippet(body, ["owl", "script", "img"]))
    assert "<mark>owl</mark>" in html
    # Only the marks are markup: the rest, unescaped, is the text itself.
    assert "<" not in shown(html) and '"' not in shown(html) and "'" not in shown(html)
    assert unescape(shown(html)) == plain_text(body)


def test_words_are_marked_from_their_start_only():
    assert marked("Tomatoes, a tomato; automaton", ["tomato"]) == (
        "<mark>Tomatoes</mark>, a <mark>tomato</mark>; automaton"
    )
    assert marked("hunting hunts", ["hunting"]) == "<mark>hunting</mark> <mark>hunts</mark>"
    assert marked("a+b <i>", ["a"]) == "<mark>a</mark>+b &lt;i&gt;"


def test_plain_text_keeps_the_words_of_markdown():
    assert plain_text("## Head\n\n1. one\n2. **two**\n\n| a | b |\n\n`code`") == (
        "Head one two a b code"
    )


def test_any_body_costs_the_same():
    # A body of nothing but unclosed brackets would take a regex a long time if all of
    # it were cleaned: only a region around the match is.
    body = "[" * 100_000 + " owl " + "[" * 100_000
    html = snippet(body, ["owl"])
    assert "<mark>owl</mark>" in html
    assert len(shown(html)) <= SNIPPET_LENGTH + 4


def test_search_results_show_snippets_and_marked_titles(app, client):
    with app.app_context():
        from flaskr.db import get_db

        get_db().execute(
            "INSERT INTO post (title, body, author_id) VALUES (?, ?, 1)",
            ("About owls", "Intro. " * 60 + "The tawny owl <b>calls</b>. " + "More. " * 60),
        )
    page = client.get("/search?q=owl").data.decode()
    assert '<h2><a href="/2"><mark>Owl</mark>' not in page
    assert "About <mark>owls</mark></a></h2>" in page
    assert '<p class="body snippet">\u2026 ' in page
    assert "The tawny <mark>owl</mark> &lt;b&gt;calls&lt;/b&gt;." in page
    assert "Continue reading" in page


def test_the_search_page_has_one_search_box(client):
    for path in ("/search", "/search?q=test"):
        page = client.get(path).data.decode()
        assert page.count('role="search"') == 1
        assert 'id="site-search-q"' not in page
    assert 'id="site-search-q"' in client.get("/").data.decode()


def test_snippets_are_kept_per_body_and_terms():
    body = "An owl and a cat. " * 30
    first = snippet(body, ["owl"])
    assert snippet(body, ["owl"]) is first
    assert snippet(body, ["cat"]) is not first and "<mark>cat</mark>" in snippet(body, ["cat"])
    assert make_snippet(body, ["owl"]) == first
    assert len(snippets.snippets.entries) <= snippets.SNIPPET_CACHE_SIZE
