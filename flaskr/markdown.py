"""Markdown: post bodies rendered to safe HTML, cached because every page view renders them.

Also excerpts of rendered HTML (feeds, lists) cut where no tag or entity breaks.
"""

import functools
import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markupsafe import Markup, escape
from mdit_py_plugins.footnote import footnote_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

LINK_REL = "nofollow ugc noopener"

# How many distinct bodies keep their HTML in memory; a page of the index needs a few.
CACHE_SIZE = 512

# Highlighted code is marked up with classes only (the stylesheet colours them): the
# Content-Security-Policy allows no style attributes.
_code_formatter = HtmlFormatter(nowrap=True)
# Column alignments of tables, as classes the stylesheet knows.
ALIGNMENT = re.compile(r"text-align:(left|center|right)")
# An image address on another site: it is shown as a link, since pages load images
# from this site only (img-src 'self').
EXTERNAL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:|//")


def highlight_code(code, lang, attrs):
    """Return a fenced code block in a known language highlighted, or "" to leave it plain."""
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    language = escapeHtml(lexer.aliases[0] if lexer.aliases else lang)
    spans = highlight(code, lexer, _code_formatter)
    return f'<pre class="highlight"><code class="language-{language}">{spans}</code></pre>\n'


# A task list item's start: "[ ]" or "[x]" and a space.
TASK = re.compile(r"\[([ xX])\][ \t\n]")
CHECKBOX = '<input class="task-list-item-checkbox"{} disabled="disabled" type="checkbox">'


def _html(content):
    """Return an inline token of markup made here (raw HTML from the text stays off)."""
    token = Token("html_inline", "", 0)
    token.content = content
    return token


def task_lists(state):
    """Make list items that start with [ ] or [x] disabled checkboxes inside their labels.

    One pass over the tokens, keeping the lists open at each point: a body of thousands
    of items costs no more than their text.
    """
    tokens, lists = state.tokens, []
    for i, token in enumerate(tokens):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            lists.append(token)
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif (
            token.type == "inline"
            and tokens[i - 1].type == "paragraph_open"
            and tokens[i - 2].type == "list_item_open"
            and token.children
            and token.children[0].type == "text"
            and TASK.match(token.children[0].content)
        ):
            first = token.children[0]
            checked = ' checked="checked"' if first.content[1] != " " else ""
            first.content = first.content[3:]
            token.children[:0] = [_html("<label>"), _html(CHECKBOX.format(checked))]
            token.children.append(_html("</label>"))
            tokens[i - 2].attrSet("class", "task-list-item")
            lists[-1].attrSet("class", "contains-task-list")


# The js-default preset turns raw HTML off (it is shown as text) and refuses unsafe
# link schemes such as javascript: and vbscript: (the link is left as plain text).
# Tables and strikethrough come with it; footnotes, task lists (disabled checkboxes) and
# bare addresses made into links are added.
_parser = (
    MarkdownIt("js-default", {"linkify": True, "highlight": highlight_code})
    .enable("linkify")
    .use(footnote_plugin)
)
_parser.core.ruler.after("inline", "task_lists", task_lists)


def _link_open(renderer, tokens, idx, options, env):
    """Mark every link as user content that search engines should not follow."""
    tokens[idx].attrSet("rel", LINK_REL)
    return renderer.renderToken(tokens, idx, options, env)


def _cell_open(renderer, tokens, idx, options, env):
    """Align a table cell by a class, not by the style attribute the policy refuses."""
    token = tokens[idx]
    style = token.attrs.pop("style", None)
    if style is not None:
        token.attrJoin("class", "align-" + ALIGNMENT.fullmatch(style).group(1))
    return renderer.renderToken(tokens, idx, options, env)


def _image(renderer, tokens, idx, options, env):
    """Show an image from this site; one from another site becomes a link to it."""
    token = tokens[idx]
    src = token.attrGet("src")
    if not EXTERNAL.match(src):
        return renderer.image(tokens, idx, options, env)
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    title = token.attrGet("title")
    title_attr = f' title="{escapeHtml(title)}"' if title else ""
    text = escapeHtml(alt) or escapeHtml(src)
    return f'<a href="{escapeHtml(src)}" rel="{LINK_REL}" class="image-link"{title_attr}>{text}</a>'


_parser.add_render_rule("link_open", _link_open)
_parser.add_render_rule("th_open", _cell_open)
_parser.add_render_rule("td_open", _cell_open)
_parser.add_render_rule("image", _image)


@functools.lru_cache(maxsize=CACHE_SIZE)
def render_markdown(text):
    """Render Markdown text to HTML that is safe to put in a page."""
    # Safe by construction: the parser escapes all text and raw HTML is off.
    return Markup(_parser.render(text))  # noqa: S704


# The units an excerpt is never cut inside: a tag, or an entity (one character shown).
HTML_UNIT = re.compile(r"<[^>]*>|&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z][A-Za-z0-9]{0,31});")
# A tag's name, with the slash of an end tag and that of a self-closing tag.
TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*?(/?)>")
# Nothing but white space up to the end.
ONLY_SPACE_LEFT = re.compile(r"\s*\Z")
# Text up to its last white space character.
UP_TO_LAST_SPACE = re.compile(r".*\s", re.DOTALL)
# Elements that have no end tag.
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
# Elements that hold other elements, not text: no ellipsis is added inside them.
CONTAINERS = frozenset({"ul", "ol", "dl", "blockquote", "table", "thead", "tbody", "tfoot", "tr"})
# Blocks: an excerpt that ends with one ended between blocks, so it needs no ellipsis.
BLOCK_END = re.compile(r"</(?:p|li|ul|ol|dl|dd|dt|pre|blockquote|table|h[1-6])>\Z")
# Past this many bytes of HTML per character of an excerpt's length, it is cut even if
# few characters are shown: markup alone (empty links, rules) must not make it large.
HTML_BYTES_PER_CHARACTER = 8


@dataclass(frozen=True)
class Excerpt:
    """The start of rendered HTML, and whether anything after it was left out."""

    html: Markup
    cut: bool


def excerpt_html(html, length):
    """Return about the first `length` shown characters of rendered HTML, as an Excerpt.

    The cut comes after a whole word (inside one only when the first word alone is too
    long), never inside a tag or an entity; the elements still open there are closed,
    and text cut short ends with an ellipsis. The HTML must be as render_markdown makes
    it: no `<` or `>` in text or attribute values, every `&` starting an entity.
    """
    html = str(html)
    cut = cut_offset(html, length)
    if cut is None or ONLY_SPACE_LEFT.match(html, cut):
        return Excerpt(Markup(html), False)  # noqa: S704 (render_markdown's own HTML)
    kept = html[:cut].rstrip()
    while kept.endswith(">"):
        # An element opened just before the cut would stay empty: leave it out.
        tag = TAG.fullmatch(kept, kept.rfind("<"))
        if tag is None or tag.group(1) or tag.group(3) or tag.group(2).lower() in VOID_ELEMENTS:
            break
        kept = kept[: tag.start()].rstrip()
    open_elements = []
    for tag in TAG.finditer(kept):
        closing, name, self_closing = tag.group(1), tag.group(2).lower(), tag.group(3)
        if closing:
            open_elements.pop()  # the renderer closes elements in order
        elif not self_closing and name not in VOID_ELEMENTS:
            open_elements.append(name)
    between_blocks = not open_elements or open_elements[-1] in CONTAINERS
    ellipsis = "" if between_blocks or BLOCK_END.search(kept, len(kept) - 13) else "\u2026"
    closers = "".join(f"</{name}>" for name in reversed(open_elements))
    return Excerpt(Markup(kept + ellipsis + closers), True)  # noqa: S704 (cut between units)


def cut_offset(html, length):
    """Return where to cut html for an excerpt of `length` shown characters; None: keep all.

    A tag shows nothing, an entity one character. The cut is at the last white space
    shown before the limit (of characters, or of bytes of HTML); without one, at the limit.
    """
    if len(html) <= length:
        return None
    max_offset = length * HTML_BYTES_PER_CHARACTER
    shown, position, last_space = 0, 0, None
    units = HTML_UNIT.finditer(html)
    while True:
        unit = next(units, None)
        text_end = len(html) if unit is None else unit.start()
        room = min(length - shown, max_offset - position)
        # The text that fits and the character after it: a space there ends a whole word.
        seen = UP_TO_LAST_SPACE.match(html, position, min(text_end, position + room + 1))
        if seen:
            last_space = seen.end() - 1
        if text_end - position > room:
            return last_space if last_space is not None else position + room
        if unit is None:
            return None
        shown += text_end - position + unit.group().startswith("&")
        if shown > length or unit.end() > max_offset:
            return last_space if last_space is not None else unit.start()
        position = unit.end()


# Characters of a post's rendered body its card in a list shows.
SUMMARY_LENGTH = 300
# How many bodies keep their summary in memory: a summary is small (a few hundred
# bytes, keyed by a digest, not by the body), so every post of a busy site's first
# pages fits, and list pages need not render whole bodies.
SUMMARY_CACHE_SIZE = 4096
# An adult's silent reading speed, words per minute, for "N min read".
WORDS_PER_MINUTE = 230
WORD = re.compile(r"\S+")
# The footnote markup of a rendered body: its references, and the notes at its end.
FOOTNOTES = re.compile(
    r'<sup class="footnote-ref">.*?</sup>|<hr class="footnotes-sep">.*', re.DOTALL
)


@dataclass(frozen=True)
class Summary:
    """What a list shows of a post: the start of its body, and its reading time."""

    excerpt: Excerpt
    minutes: int


class DigestCache:
    """A bounded map from texts to what was made of them, keyed by a digest of each text.

    The most recently used entries are kept; the texts themselves are not.
    """

    def __init__(self, size, make):
        self.size = size
        self.make = make
        self.entries = OrderedDict()
        self.lock = threading.Lock()

    def get(self, text, *args):
        """Return make(text, *args), made now or kept from an earlier call."""
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        key = (digest, *args)
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
                return value
        value = self.make(text, *args)
        with self.lock:
            self.entries[key] = value
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return value


def reading_minutes(text):
    """Return the minutes a reader takes to read text: at least one."""
    words = sum(1 for _ in WORD.finditer(text))
    return max(1, round(words / WORDS_PER_MINUTE))


def make_summary(text):
    """Return the Summary of a post body."""
    # Rendered outside render_markdown's cache: that one keeps whole bodies for post pages.
    # Footnotes stay on the post's page: their ids would repeat on a list of cards.
    html = FOOTNOTES.sub("", render_markdown.__wrapped__(text))
    return Summary(excerpt_html(html, SUMMARY_LENGTH), reading_minutes(text))


summaries = DigestCache(SUMMARY_CACHE_SIZE, make_summary)


def summarize(text):
    """Return the Summary of a post body (see Summary), from memory when it was seen."""
    return summaries.get(text)


# Comment text: paragraphs are parted by blank lines.
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


@functools.lru_cache(maxsize=CACHE_SIZE)
def render_comment(text):
    """Render a comment's plain text: its paragraphs and line breaks, its addresses as links.

    Nothing else of it is markup: comments are not Markdown.
    """
    paragraphs = PARAGRAPH_BREAK.split(text.strip().replace("\r\n", "\n"))
    html = "\n".join(
        "<p>{}</p>".format(link_addresses(p).replace("\n", "<br>\n")) for p in paragraphs if p
    )
    return Markup(html)  # noqa: S704 (escaped by link_addresses)


def link_addresses(text):
    """Return text escaped, with the web and mail addresses in it made links."""
    parts, position = [], 0
    # The addresses found are web and mail ones only (http, https, ftp, mailto, //):
    # never a scheme that could run script.
    for found in _parser.linkify.match(text) or ():
        href = _parser.normalizeLink(found.url)
        parts.append(escape(text[position : found.index]))
        parts.append(f'<a href="{escape(href)}" rel="{LINK_REL}">{escape(found.text)}</a>')
        position = found.last_index
    parts.append(escape(text[position:]))
    return "".join(parts)


def init_app(app):
    """Offer render_markdown, summarize and render_comment to templates as filters."""
    app.add_template_filter(render_markdown, "markdown")
    app.add_template_filter(summarize, "summary")
    app.add_template_filter(render_comment, "comment")
