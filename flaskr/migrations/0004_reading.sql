-- Reading: tags, full-text search and edit times.

-- When a post was last edited (NULL: never); feeds report it as the entry's update time.
ALTER TABLE post ADD COLUMN updated TIMESTAMP DEFAULT NULL;

-- Tags, stored lowercase so that "Python" and "python" are one tag.
CREATE TABLE tag (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);

-- Which post has which tag. `created` copies the post's, so that a tag page, newest
-- first, walks the index post_tag_tag_created instead of sorting all the tag's posts.
CREATE TABLE post_tag (
  post_id INTEGER NOT NULL REFERENCES post (id) ON DELETE CASCADE,
  tag_id INTEGER NOT NULL REFERENCES tag (id) ON DELETE CASCADE,
  created TIMESTAMP NOT NULL,
  PRIMARY KEY (post_id, tag_id)
) WITHOUT ROWID;

CREATE INDEX post_tag_tag_created ON post_tag (tag_id, created, post_id);

CREATE TRIGGER post_tag_follows_created AFTER UPDATE OF created ON post BEGIN
  UPDATE post_tag SET created = new.created WHERE post_id = new.id;
END;

-- A tag lives as long as some post has it.
CREATE TRIGGER tag_dropped_when_unused AFTER DELETE ON post_tag BEGIN
  DELETE FROM tag
  WHERE id = old.tag_id AND NOT EXISTS (SELECT 1 FROM post_tag WHERE tag_id = old.tag_id);
END;

-- Full-text index of titles and bodies. It reads its text from post (external content)
-- and the triggers keep it in step with every insert, edit and delete, however made.
CREATE VIRTUAL TABLE post_fts USING fts5(
  title, body, content='post', content_rowid='id',
  tokenize='porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER post_fts_after_insert AFTER INSERT ON post BEGIN
  INSERT INTO post_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;

CREATE TRIGGER post_fts_after_delete AFTER DELETE ON post BEGIN
  INSERT INTO post_fts (post_fts, rowid, title, body)
  VALUES ('delete', old.id, old.title, old.body);
END;

CREATE TRIGGER post_fts_after_update AFTER UPDATE OF title, body ON post BEGIN
  INSERT INTO post_fts (post_fts, rowid, title, body)
  VALUES ('delete', old.id, old.title, old.body);
  INSERT INTO post_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;

-- Index the posts written before this migration.
INSERT INTO post_fts (post_fts) VALUES ('rebuild');
