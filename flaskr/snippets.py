"""Search snippets: the part of a post around the words searched for, those words marked."""

import re

from markupsafe import Markup, escape

# Characters of text a snippet shows.
SNIPPET_LENGTH = 240
# Of them, how many come before the first word found, so that it reads in context.
LEAD = 60
# Markdown's marks, which a snippet (plain text) leaves out: images and links keep their
# text, emphasis, code and heading marks go, lines and spaces run together.
LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
MARKS = re.compile(r"[*_~`|]+|^[ \t]*(?:#+|>+|[-+]|\d+\.)[ \t]+", re.MULTILINE)
SPACE = re.compile(r"\s+")
# Endings that search ignores, as its stemmer does for most words.
SUFFIXES = ("ing", "es", "ed", "s")


def plain_text(markdown):
    """Return Markdown text as one line of plain text, without its marks."""
    text = LINK.sub(r"\1", markdown)
    return SPACE.sub(" ", MARKS.sub(" ", text)).strip()


def stem(term):
    """Return the start shared by a word's forms (search finds "tomatoes" for "tomato")."""
    term = term.casefold()
    for suffix in SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 3:
            return term[: -len(suffix)]
    return term


def terms_pattern(terms):
    """Return a pattern matching the words that start like any of the terms, in any case."""
    stems = sorted({stem(term) for term in terms}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:{})\w*".format("|".join(map(re.escape, stems))), re.IGNORECASE)


def mark_terms(text, pattern):
    """Return text escaped, with each match of pattern in <mark>."""
    parts, position = [], 0
    for found in pattern.finditer(text):
        parts.append(escape(text[position : found.start()]))
        parts.append(Markup("<mark>{}</mark>").format(found.group()))
        position = found.end()
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


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


def snippet(markdown, terms, length=SNIPPET_LENGTH):
    """Return the part of a post body around the first of the terms it has, terms marked.

    Without a match in the body (the title matched), the snippet is the body's start.
    Whatever the text holds, the result is escaped: only the <mark> elements are markup.
    """
    pattern = terms_pattern(terms) if terms else None
    found = pattern.search(markdown) if pattern else None
    around = found.start() if found else 0
    # Only a region around the match is cleaned, so any body costs the same.
    region_start = max(0, around - 4 * LEAD)
    region_end = around + 3 * length
    text = plain_text(markdown[region_start:region_end])
    found = pattern.search(text) if pattern else None
    first, last = window(text, max(0, found.start() - LEAD) if found else 0, length)
    shown = text[first:last]
    html = mark_terms(shown, pattern) if pattern else escape(shown)
    before = "\u2026 " if region_start > 0 or first > 0 else ""
    after = " \u2026" if region_end < len(markdown) or last < len(text) else ""
    return Markup("{}{}{}").format(before, html, after)


def marked(text, terms):
    """Return text escaped, with each of the terms in it in <mark>."""
    return mark_terms(text, terms_pattern(terms))


def init_app(app):
    """Offer snippet and marked to templates, snippet as search_snippet."""
    app.add_template_global(snippet, "search_snippet")
    app.add_template_global(marked, "marked")
