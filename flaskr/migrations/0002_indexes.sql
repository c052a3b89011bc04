-- Indexes that keep list pages and lookups independent of the number of rows.

-- The index, newest first: ORDER BY created DESC, id DESC walks this index backwards.
CREATE INDEX post_created ON post (created, id);

-- An author's posts, newest first.
CREATE INDEX post_author_created ON post (author_id, created, id);

-- Usernames are unique ignoring case ("Alice" and "alice" are one person).
CREATE UNIQUE INDEX user_username_nocase ON user (username COLLATE NOCASE);
