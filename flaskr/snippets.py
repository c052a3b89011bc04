"""Search snippets: the part of a post around the words searched for, those words marked."""

import functools
import html
import re

from markupsafe import Markup

from .markdown import DigestCache

# Characters of text a snippet shows.
SNIPPET_LENGTH = 240
# Of them, how many come before the first word found, so that it reads in context.
LEAD = 60
# Markdown's marks, which a snippet (plain text) leaves out: images and links keep their
# text, emphasis, code and heading marks go, lines and spaces run together.
# (An image's "!" is dropped first: a pattern that starts with a literal "[" is faster.)
LINK = re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)")
LINE_MARK = re.compile(r"[ \t]*(?:#+|>+|[-+]|\d+\.)[ \t]+")
INLINE_MARKS = str.maketrans("", "", "*_~`|")
# Endings that search ignores, as its stemmer does for most words.
SUFFIXES = ("ing", "es", "ed", "s")


def plain_text(markdown):
    """Return Markdown text as one line of plain text, without its marks."""
    # String methods rather than substitutions: a search page makes a snippet per post.
    text = LINK.sub(link_text, markdown.replace("![", "[")) if "](" in markdown else markdown
    lines = " ".join(map(line_text, text.splitlines()))
    return " ".join(lines.translate(INLINE_MARKS).split())


def link_text(link):
    """Return the text of a Markdown link or image."""
    return link.group(1)


def line_text(line):
    """Return a line without the mark of a heading, quote or list item at its start."""
    mark = LINE_MARK.match(line)
    return line[mark.end() :] if mark else line


def stem(term):
    """Return the start shared by a word's forms (search finds "tomatoes" for "tomato")."""
    term = term.casefold()
    for suffix in SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 3:
            return term[: -len(suffix)]
    return term


def terms_pattern(terms):
    """Return a pattern matching the words that start like any of the terms, in any case.

    A word right after "&" or "#" is not matched: in escaped text that is an entity.
    """
    return _terms_pattern(tuple(terms))


@functools.lru_cache(maxsize=256)
def _terms_pattern(terms):
    stems = sorted({stem(term) for term in terms}, key=len, reverse=True)
    alternatives = "|".join(map(re.escape, stems))
    return re.compile(rf"(?<![\w&#])((?:{alternatives})\w*)", re.IGNORECASE)


def mark_terms(text, pattern):
    """Return text escaped, with each match of terms_pattern's pattern in <mark>."""
    return Markup(pattern.sub(r"<mark>\1</mark>", html.escape(text)))  # noqa: S704 (escaped)


def window(text, start, length):
    """Return (first, last) offsets of about length characters of text from start.

    Both ends fall between words when a space is near enough.
    """
    if start > 0:
        space = text.find(" ", start, start + LEAD)
        start = space + 1 if space != -1 else start
    end = min(len(text), start + length)
    if end < len(text):
        space = text.rfind(" ", start + length // 2, end)
        end = space if space != -1 else end
    return start, end


def snippet(markdown, terms):
    """Return the part of a post body around the first of the terms it has, terms marked.

    Kept in memory for the pages of results asked for again.
    """
    return snippets.get(markdown, tuple(terms))


def make_snippet(markdown, terms, length=SNIPPET_LENGTH):
    """Return the part of a post body around the first of the terms it has, terms marked.

    Without a match in the body (the title matched), the snippet is the body's start.
    Whatever the text holds, the result is escaped: only the <mark> elements are markup.
    """
    pattern = terms_pattern(terms) if terms else None
    found = pattern.search(markdown) if pattern else None
    around = found.start() if found else 0
    # Only a region around the match is cleaned, so any body costs the same.
    region_start = max(0, around - 2 * LEAD)
    region_end = around + 3 * length // 2
    text = plain_text(markdown[region_start:region_end])
    found = pattern.search(text) if pattern else None
    first, last = window(text, max(0, found.start() - LEAD) if found else 0, length)
    shown = text[first:last]
    marked_text = mark_terms(shown, pattern) if pattern else html.escape(shown)
    before = "\u2026 " if region_start > 0 or first > 0 else ""
    after = " \u2026" if region_end < len(markdown) or last < len(text) else ""
    return Markup(before + marked_text + after)  # noqa: S704 (text escaped, words marked)


# Snippets kept: each is a few hundred bytes.
SNIPPET_CACHE_SIZE = 4096
snippets = DigestCache(SNIPPET_CACHE_SIZE, make_snippet)


def marked(text, terms):
    """Return text escaped, with each of the terms in it in <mark>."""
    return mark_terms(text, terms_pattern(terms))


def init_app(app):
    """Offer snippet and marked to templates, snippet as search_snippet."""
    app.add_template_global(snippet, "search_snippet")
    app.add_template_global(marked, "marked")
