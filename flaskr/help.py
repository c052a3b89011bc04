"""Help pages: /help/markdown, what the Markdown of posts can do."""

from flask import Blueprint, render_template

from .caching import cached_page

bp = Blueprint("help", __name__, url_prefix="/help")


@bp.route("/markdown")
@cached_page()
def markdown():
    """Show what post bodies can contain, each example with what it becomes."""
    return render_template("help/markdown.html")
