-- Server-side sessions (so that logging out really ends one) and failed logins (so that
-- password guessing is throttled across threads and processes).

-- One row per login: the cookie holds a random token, this table only its SHA-256, so
-- a copy of the database cannot be replayed as a cookie. Logging out deletes the row.
CREATE TABLE user_session (
  token_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Deleting a user deletes their sessions through this index, not a table scan.
CREATE INDEX user_session_user ON user_session (user_id);

-- One row per failed login within the throttling window; older rows are pruned.
CREATE TABLE login_failure (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL DEFAULT '' COLLATE NOCASE,
  address TEXT NOT NULL DEFAULT '',
  at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Recent failures for one username (any case) and from one address, newest first.
CREATE INDEX login_failure_username_at ON login_failure (username, at);
CREATE INDEX login_failure_address_at ON login_failure (address, at);

-- Pruning rows older than the window.
CREATE INDEX login_failure_at ON login_failure (at);
