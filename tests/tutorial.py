"""A database as the Flask tutorial leaves it, for the upgrade tests."""

import sqlite3

from werkzeug.security import generate_password_hash

# The schema a database made by the Flask tutorial has: no migrations, user_version 0.
TUTORIAL_SCHEMA = """
CREATE TABLE user (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT UNIQUE NOT NULL,
  password TEXT NOT NULL
);
CREATE TABLE post (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  author_id INTEGER NOT NULL,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  FOREIGN KEY (author_id) REFERENCES user (id)
);
"""


def make_tutorial_database(path):
    """Build a database as the tutorial's init-db and a few weeks of use would leave it."""
    db = sqlite3.connect(path)
    db.executescript(TUTORIAL_SCHEMA)
    db.executemany(
        "INSERT INTO user (username, password) VALUES (?, ?)",
        [
            ("test", generate_password_hash("test", method="pbkdf2:sha256:50000")),
            ("other", generate_password_hash("other", method="pbkdf2:sha256:50000")),
        ],
    )
    db.executemany(
        "INSERT INTO post (title, body, author_id, created) VALUES (?, ?, ?, ?)",
        [
            ("first", "hello\nworld", 1, "2018-01-01 00:00:00"),
            ("second", "more", 2, "2018-02-01 12:30:00"),
        ],
    )
    db.commit()
    db.close()
