import pytest

from flaskr.markdown import render_markdown


def test_markdown_is_rendered():
    html = render_markdown("# Head\n\n**bold** and *it*\n\n- one\n- two\n\n`code`")
    assert "<h1>Head</h1>" in html
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html
    assert "<li>one</li>" in html
    assert "<code>code</code>" in html


def test_a_soft_break_stays_a_newline():
    assert render_markdown("test\nbody") == "<p>test\nbody</p>\n"


@pytest.mark.parametrize(
    "text",
    ["<b>raw</b>", "<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "<!-- c -->"],
)
def test_raw_html_is_shown_as_text(text):
    html = render_markdown(text)
    assert "<" + text[1:] not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_unsafe_link_schemes_are_not_links(url):
    html = render_markdown(f"[click]({url}) ![pic]({url}) <{url}>")
    assert "<a " not in html
    assert "<img " not in html
    assert "href=" not in html


def test_links_are_marked_as_user_content():
    html = render_markdown("[site](https://example.org) and <https://example.com/x>")
    assert html.count('rel="nofollow ugc noopener"') == 2
    assert '<a href="https://example.org" rel="nofollow ugc noopener">site</a>' in html


def test_rendering_is_cached():
    text = "cached *once*"
    render_markdown(text)
    hits = render_markdown.cache_info().hits
    assert render_markdown(text) is render_markdown(text)
    assert render_markdown.cache_info().hits == hits + 2


def test_the_index_shows_rendered_bodies(app, client):
    from flaskr.db import get_db

    with app.app_context():
        get_db().execute("UPDATE post SET body = '**strong** <b>x</b>' WHERE id = 1")
    page = client.get("/").data
    assert b"<strong>strong</strong> &lt;b&gt;x&lt;/b&gt;" in page
