"""Helpers for testing list pages: adding dated posts, reading titles, walking the pages."""

import re
from datetime import datetime, timedelta

from flaskr.db import get_db

TUTORIAL_POST_CREATED = datetime(2018, 1, 1)


def add_posts(app, n, *, authors=(1,), body="", start=TUTORIAL_POST_CREATED, step=None):
    """Add posts "post 1" to "post n", the k-th created at start + k * step (a minute by default).

    Authors take turns in the order given; body may name the post's number as {k}.
    """
    step = step or timedelta(minutes=1)
    with app.app_context():
        get_db().executemany(
            "INSERT INTO post (title, body, author_id, created) VALUES (?, ?, ?, ?)",
            [
                (
                    f"post {k}",
                    body.format(k=k),
                    authors[k % len(authors)],
                    f"{start + k * step:%Y-%m-%d %H:%M:%S}",
                )
                for k in range(1, n + 1)
            ],
        )


def titles(page):
    """The post titles of a list page, in order (each is a link to its post), as shown."""
    found = re.findall(r"<h2><a href=\"/\d+/[^\"/]+\">(.*?)</a></h2>", page.decode())
    return [re.sub("</?mark>", "", title) for title in found]


def assert_twelve_posts_paginate(client, path):
    """The tutorial post and add_posts(app, 11) at path: pages of 5, 5 and 2, newest first."""
    first = client.get(path).data
    assert titles(first) == ["post 11", "post 10", "post 9", "post 8", "post 7"]
    assert f'href="{path}?page=2"'.encode() in first
    assert b'rel="prev"' not in first

    second = client.get(f"{path}?page=2").data
    assert titles(second) == ["post 6", "post 5", "post 4", "post 3", "post 2"]
    assert f'href="{path}?page=1"'.encode() in second
    assert f'href="{path}?page=3"'.encode() in second

    third = client.get(f"{path}?page=3").data
    assert titles(third) == ["post 1", "test title"]
    assert b'rel="next"' not in third
    assert client.get(f"{path}?page=4").status_code == 404
