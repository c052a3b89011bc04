"""Pagination of list pages: LIMIT/OFFSET over an indexed ORDER BY, no COUNT(*)."""

from dataclasses import dataclass

from flask import abort, current_app, request

# Past this many pages a request is out of range (and an OFFSET stays a small integer).
MAX_PAGE = 1_000_000


@dataclass
class Page:
    """One page of rows, with whether there are pages before and after it."""

    items: list
    number: int
    has_prev: bool
    has_next: bool


def page_number(name="page"):
    """Return the page number in query argument `name`; missing is 1, out of range is 404.

    The length is checked before converting, so a number of thousands of digits costs
    nothing (and never reaches Python's limit on converting long digit strings).
    """
    raw = request.args.get(name, "1")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_PAGE)):
        abort(404, "There is no such page.")
    number = int(raw)
    if not 1 <= number <= MAX_PAGE:
        abort(404, "There is no such page.")
    return number


def paginate(db, query, params=()):
    """Run query (which must end in ORDER BY) for the requested page.

    Fetches one row more than a page to know whether a next page exists, so the cost
    depends on the page, never on the total number of rows. A page past the end is 404.
    """
    number = page_number()
    per_page = current_app.config["POSTS_PER_PAGE"]
    rows = db.execute(
        f"{query} LIMIT ? OFFSET ?", (*params, per_page + 1, (number - 1) * per_page)
    ).fetchall()
    if number > 1 and not rows:
        abort(404, "There is no such page.")
    return Page(rows[:per_page], number, number > 1, len(rows) > per_page)
