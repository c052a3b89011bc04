"""Checking a rendered page for live markup that hostile or imported content could bring."""

from html.parser import HTMLParser

# Elements that run or embed something, whatever their attributes.
LIVE_ELEMENTS = {"iframe", "object", "embed", "frame", "base"}


class LiveMarkupFinder(HTMLParser):
    """Collects, as the browser would parse them, the page's elements that could run code."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and not (attributes.get("src") or "").startswith("/static/"):
            self.found.append(f"<script> {attributes}")
        if tag in LIVE_ELEMENTS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}")
            if name in ("href", "src", "action") and "javascript:" in (value or "").lower():
                self.found.append(f"{tag} {name}={value}")


def live_markup(page):
    """Return the pieces of live markup in a page (bytes or text): [] for a safe page."""
    finder = LiveMarkupFinder()
    finder.feed(page.decode() if isinstance(page, bytes) else page)
    finder.close()
    return finder.found
