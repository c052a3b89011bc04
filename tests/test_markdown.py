import re
from html.parser import HTMLParser

import pytest

from flaskr import markdown
from flaskr.markdown import (
    HTML_BYTES_PER_CHARACTER,
    Excerpt,
    excerpt_html,
    reading_minutes,
    render_comment,
    render_markdown,
    summarize,
)


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


class WellFormed(HTMLParser):
    """Checks that every element is closed, in order, and collects the text shown."""

    VOID = {"br", "hr", "img"}

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.open, self.text = [], ""
        self.feed(str(html))
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag

    def handle_data(self, data):
        self.text += data


RICH = (
    "Plain *emphasis with **strong inside** it* then [a link *with* style](https://example.org/a?b=1&c=2)"
    ' & "quotes" <tags> &copy; caf\u00e9.\n\n'
    "```\ncode <x> & y\n  indented line\n```\n\n"
    "- first item\n- second *item*\n  - nested item\n\n"
    "1. one\n2. two\n\n> quoted **text** here\n\n"
    "Line with `inline <code>` and a hard  \nbreak ![an image](https://example.org/i.png) end."
)


def test_an_excerpt_that_fits_is_the_whole_html():
    html = render_markdown("short *text*")
    excerpt = excerpt_html(html, 2000)
    assert excerpt == Excerpt(html, False)
    assert excerpt_html(render_markdown(RICH), 10_000).cut is False


def test_an_excerpt_is_well_formed_at_every_length():
    html = render_markdown(RICH)
    full_text = WellFormed(html).text
    for length in range(1, len(full_text) + 10):
        excerpt = excerpt_html(html, length)
        checked = WellFormed(excerpt.html)  # every tag closed, none cut in half
        assert checked.open == [], (length, excerpt.html)
        # No entity cut in half: every & still starts a whole entity.
        assert re.fullmatch(r"([^&]|&(amp|lt|gt|quot);)*", str(excerpt.html)), excerpt.html
        shown = checked.text.removesuffix("\u2026")
        assert len(shown.rstrip()) <= length
        assert full_text.startswith(shown.rstrip()), (length, shown)
        assert excerpt.cut == (len(shown.rstrip()) < len(full_text.rstrip()))


@pytest.mark.parametrize(
    ("text", "length", "expected"),
    [
        # Nested emphasis: cut after a whole word, every element closed, an ellipsis.
        (
            "one *two **three four** five* six",
            16,
            "<p>one <em>two <strong>three\u2026</strong></em></p>",
        ),
        (
            "one *two **three four** five* six",
            20,
            "<p>one <em>two <strong>three four</strong>\u2026</em></p>",
        ),
        # Links keep their whole start tag.
        (
            "see [the whole page](https://example.org/x) now",
            12,
            '<p>see <a href="https://example.org/x" rel="nofollow ugc noopener">the\u2026</a></p>',
        ),
        # Entities count as one character and are never cut.
        ('a & b "c" d', 6, "<p>a &amp; b\u2026</p>"),
        ('a & b "c" d', 9, "<p>a &amp; b &quot;c&quot;\u2026</p>"),
        # Code blocks close both elements.
        ("```\nline one\nline two\n```", 13, "<pre><code>line one\nline\u2026</code></pre>"),
        # Lists: no empty element is left open at the cut, no text between items.
        ("para\n\n- one\n- two\n- three", 10, "<p>para</p>\n<ul>\n<li>one</li></ul>"),
        ("- one\n  - inner", 12, "<ul>\n<li>one\n<ul>\n<li>inner</li>\n</ul></li></ul>"),
        # A first word longer than the excerpt is cut inside, between characters.
        ('"' * 50, 10, "<p>" + "&quot;" * 10 + "\u2026</p>"),
        # A cut right after a hard line break.
        ("first line  \nsecond", 11, "<p>first line<br>\u2026</p>"),
    ],
)
def test_excerpts_cut_between_words_and_close_what_is_open(text, length, expected):
    excerpt = excerpt_html(render_markdown(text), length)
    assert excerpt.html == expected
    assert excerpt.cut


def test_markup_that_shows_nothing_still_counts_towards_an_excerpts_size():
    # Empty links show no text: the excerpt is bounded by bytes of HTML too.
    html = render_markdown("[](https://example.org/x)" * 2000)
    assert len(html) > 50_000
    excerpt = excerpt_html(html, 100)
    assert excerpt.cut
    assert len(excerpt.html) <= 100 * HTML_BYTES_PER_CHARACTER
    assert WellFormed(excerpt.html).open == []
    rules = render_markdown("***\n" * 1000 + "last")
    assert len(excerpt_html(rules, 100).html) <= 100 * HTML_BYTES_PER_CHARACTER


def test_a_huge_body_makes_a_small_excerpt():
    html = render_markdown('"' * 100_000)
    excerpt = excerpt_html(html, 2000)
    assert excerpt.html == "<p>" + "&quot;" * 2000 + "\u2026</p>"


@pytest.mark.parametrize(
    ("words", "minutes"), [(0, 1), (1, 1), (344, 1), (346, 2), (920, 4), (2300, 10)]
)
def test_reading_time_is_words_at_230_a_minute_and_at_least_one(words, minutes):
    assert reading_minutes(" \n".join(["word"] * words)) == minutes


def test_a_summary_is_the_start_of_the_body_cut_at_300_characters():
    text = "A *short* body with [a link](https://example.org)."
    assert summarize(text).excerpt == Excerpt(render_markdown(text), False)
    long = "word " * 1000
    summary = summarize(long)
    assert summary.minutes == 4
    assert summary.excerpt.cut
    shown = WellFormed(summary.excerpt.html).text
    assert 280 <= len(shown) <= 301
    assert shown.endswith("word\u2026")


def test_summaries_are_kept_by_a_digest_of_the_body_within_a_bound(monkeypatch):
    cache = markdown.DigestCache(2, lambda text: markdown.make_summary(text))
    monkeypatch.setattr(markdown, "summaries", cache)
    made = []
    monkeypatch.setattr(markdown, "make_summary", lambda text: made.append(text) or text.upper())
    assert [summarize(t) for t in ("a", "b", "a", "c", "a", "b")] == list("ABACAB")
    # "a" was used again before "c" came, so "b" was the one dropped.
    assert made == ["a", "b", "c", "b"]
    assert len(cache.entries) == 2
    assert all(len(digest) == 16 for (digest,) in cache.entries)


def test_footnotes_are_rendered():
    html = render_markdown("A claim[^1].\n\n[^1]: The *source*.")
    assert '<sup class="footnote-ref"><a href="#fn1" id="fnref1">[1]</a></sup>' in html
    assert '<li id="fn1" class="footnote-item"><p>The <em>source</em>.' in html
    assert '<a href="#fnref1" class="footnote-backref">' in html


def test_task_lists_are_disabled_checkboxes_in_their_labels():
    html = render_markdown("- [ ] to do\n- [x] done *well*")
    assert (
        '<li class="task-list-item"><label><input class="task-list-item-checkbox"'
        ' disabled="disabled" type="checkbox"> to do</label></li>'
    ) in html
    assert 'checked="checked" disabled="disabled" type="checkbox"> done <em>well</em>' in html
    assert "[ ]" not in html and "[x]" not in html


def test_bare_addresses_become_links_marked_as_user_content():
    html = render_markdown("see www.example.org and https://example.com/a?b=1 or javascript:x")
    assert (
        '<a href="http://www.example.org" rel="nofollow ugc noopener">www.example.org</a>' in html
    )
    assert '<a href="https://example.com/a?b=1" rel="nofollow ugc noopener">' in html
    assert html.count("<a ") == 2


def test_table_columns_are_aligned_by_class_not_style():
    html = render_markdown("| a | b | c | d |\n|:--|:-:|--:|---|\n| 1 | 2 | 3 | 4 |")
    assert "style=" not in html
    for cell in ("th", "td"):
        assert f'<{cell} class="align-left">' in html
        assert f'<{cell} class="align-center">' in html
        assert f'<{cell} class="align-right">' in html
    assert "<th>d</th>" in html and "<td>4</td>" in html


def test_code_in_a_known_language_is_highlighted_with_classes_only():
    html = render_markdown('```python\ndef f(x):\n    return "<b>" & x\n```')
    assert html.startswith('<pre class="highlight"><code class="language-python">')
    assert '<span class="k">def</span>' in html
    assert '<span class="s2">"&lt;b&gt;"</span>' in html
    assert "<b>" not in html and "style=" not in html
    assert WellFormed(html).open == []


@pytest.mark.parametrize("info", ["nosuchlanguage", "", 'x"><script>'])
def test_code_in_another_language_is_plain_text(info):
    html = render_markdown(f"```{info}\n<b>bold</b>\n```")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<span" not in html and "<script" not in html


def test_images_from_other_sites_become_links_with_their_alt_text():
    html = render_markdown(
        '![a *cat*](https://example.org/cat.png "The cat") ![](//example.org/x.png)'
        " ![ours](/uploads/a.png)"
    )
    assert (
        '<a href="https://example.org/cat.png" rel="nofollow ugc noopener" class="image-link"'
        ' title="The cat">a cat</a>'
    ) in html
    assert (
        '<a href="//example.org/x.png" rel="nofollow ugc noopener" class="image-link">'
        "//example.org/x.png</a>"
    ) in html
    assert '<img src="/uploads/a.png" alt="ours">' in html
    assert html.count("<img") == 1


def test_a_summary_leaves_footnotes_to_the_post_page():
    excerpt = summarize("A claim[^1] and more.\n\n[^1]: The source.").excerpt
    assert excerpt.html == "<p>A claim and more.</p>\n"


def test_comments_keep_their_paragraphs_and_line_breaks():
    html = render_comment("First line\nsecond line\r\n\r\n  \n\nNew *paragraph* <b>.\n\n")
    assert html == ("<p>First line<br>\nsecond line</p>\n<p>New *paragraph* &lt;b&gt;.</p>")


def test_addresses_in_comments_become_links_marked_as_user_content():
    html = render_comment('See www.example.org & https://example.com/a?b=1&c="2". javascript:x')
    assert html == (
        '<p>See <a href="http://www.example.org" rel="nofollow ugc noopener">www.example.org</a>'
        ' &amp; <a href="https://example.com/a?b=1&amp;c=%222%22" rel="nofollow ugc noopener">'
        "https://example.com/a?b=1&amp;c=&#34;2&#34;</a>. javascript:x</p>"
    )


def test_only_the_list_holding_a_task_is_a_task_list():
    html = render_markdown("- plain\n  - [x] done\n- [ ]no space\n\n1. [ ] numbered")
    assert html.startswith('<ul>\n<li>plain\n<ul class="contains-task-list">')
    assert "<li>[ ]no space</li>" in html
    assert '<ol class="contains-task-list">\n<li class="task-list-item"><label>' in html
    assert html.count("<input") == 2
