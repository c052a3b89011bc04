-- SQL that both backends share: sessions get an id column (PostgreSQL has no rowid),
-- and usernames are looked up through lower(), which both backends index.

CREATE TABLE user_session_new (
  id INTEGER PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  user_agent TEXT NOT NULL DEFAULT '',
  address TEXT NOT NULL DEFAULT '',
  last_seen TIMESTAMP DEFAULT NULL
);

-- Each session keeps its number (the rowid the settings page showed).
INSERT INTO user_session_new (id, token_hash, user_id, created, user_agent, address, last_seen)
SELECT rowid, token_hash, user_id, created, user_agent, address, last_seen FROM user_session;

DROP TABLE user_session;
ALTER TABLE user_session_new RENAME TO user_session;

-- Deleting a user deletes their sessions through this index, not a table scan.
CREATE INDEX user_session_user ON user_session (user_id);

-- Usernames are unique ignoring case; lookups compare lower(username).
CREATE INDEX user_username_lower ON user (lower(username));
