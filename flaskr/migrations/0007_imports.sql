-- Imports: comments by people without an account (brought in from another blog), and
-- what has been imported already, so that an import run twice adds nothing twice.

-- A comment's author is an account (author_id) or, for an imported comment written by
-- someone without one, just a name (author_name). SQLite cannot drop NOT NULL in place,
-- so the table is rebuilt with its rows, ids and AUTOINCREMENT counter.
CREATE TABLE comment_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  post_id INTEGER NOT NULL REFERENCES post (id) ON DELETE CASCADE,
  author_id INTEGER REFERENCES user (id) ON DELETE CASCADE,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  body TEXT NOT NULL,
  author_name TEXT DEFAULT NULL,
  CHECK (author_id IS NOT NULL OR author_name IS NOT NULL)
);

INSERT INTO comment_new (id, post_id, author_id, created, body)
SELECT id, post_id, author_id, created, body FROM comment;

DELETE FROM sqlite_sequence WHERE name = 'comment_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'comment_new', seq FROM sqlite_sequence WHERE name = 'comment';

DROP TABLE comment;
ALTER TABLE comment_new RENAME TO comment;

-- A post's comments, oldest first.
CREATE INDEX comment_post_created ON comment (post_id, created, id);

-- One row per thing brought in from elsewhere: source names the importer ('wordpress'),
-- kind what was imported ('post', 'author'), key its id there, row_id its id here.
CREATE TABLE imported (
  source TEXT NOT NULL,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  row_id INTEGER NOT NULL,
  PRIMARY KEY (source, kind, key)
) WITHOUT ROWID;
