"""Markdown: post bodies rendered to safe HTML, cached because every page view renders them."""

import functools

from markdown_it import MarkdownIt
from markupsafe import Markup

LINK_REL = "nofollow ugc noopener"

# How many distinct bodies keep their HTML in memory; a page of the index needs a few.
CACHE_SIZE = 512

# The js-default preset turns raw HTML off (it is shown as text) and refuses unsafe
# link schemes such as javascript: and vbscript: (the link is left as plain text).
_parser = MarkdownIt("js-default")


def _link_open(renderer, tokens, idx, options, env):
    """Mark every link as user content that search engines should not follow."""
    tokens[idx].attrSet("rel", LINK_REL)
    return renderer.renderToken(tokens, idx, options, env)


_parser.add_render_rule("link_open", _link_open)


@functools.lru_cache(maxsize=CACHE_SIZE)
def render_markdown(text):
    """Render Markdown text to HTML that is safe to put in a page."""
    # Safe by construction: the parser escapes all text and raw HTML is off.
    return Markup(_parser.render(text))  # noqa: S704


def init_app(app):
    """Offer render_markdown to templates as the `markdown` filter."""
    app.add_template_filter(render_markdown, "markdown")
