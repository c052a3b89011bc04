-- Comments, likes and an image per post.

-- A post's image: a server-made file name in the upload folder, NULL without one.
ALTER TABLE post ADD COLUMN image TEXT DEFAULT NULL;

CREATE TABLE comment (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  post_id INTEGER NOT NULL REFERENCES post (id) ON DELETE CASCADE,
  author_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  body TEXT NOT NULL
);

-- A post's comments, oldest first.
CREATE INDEX comment_post_created ON comment (post_id, created, id);

-- One like per user per post, enforced by the primary key; counting a post's likes
-- walks this index.
CREATE TABLE post_like (
  post_id INTEGER NOT NULL REFERENCES post (id) ON DELETE CASCADE,
  user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (post_id, user_id)
) WITHOUT ROWID;
