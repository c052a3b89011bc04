-- Accounts: roles, suspension, profiles, what each session was seen as, one-time links
-- (password resets and invites) and the site's own settings.

-- 'author' for everyone; 'admin' only by the set-role command or another admin's hand.
ALTER TABLE user ADD COLUMN role TEXT NOT NULL DEFAULT 'author' CHECK (role IN ('admin', 'author'));
-- When the account was suspended (NULL: it is not); a suspended user cannot log in.
ALTER TABLE user ADD COLUMN suspended TIMESTAMP DEFAULT NULL;
-- SQLite cannot add a column whose default is the current time: a trigger fills it.
ALTER TABLE user ADD COLUMN joined TIMESTAMP DEFAULT NULL;
ALTER TABLE user ADD COLUMN last_login TIMESTAMP DEFAULT NULL;
-- Profile: an empty display name shows the username instead.
ALTER TABLE user ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE user ADD COLUMN bio TEXT NOT NULL DEFAULT '';
ALTER TABLE user ADD COLUMN avatar TEXT DEFAULT NULL;

-- Accounts older than this column joined no later than their first post.
UPDATE user SET joined = COALESCE(
  (SELECT MIN(created) FROM post WHERE author_id = user.id), CURRENT_TIMESTAMP);

CREATE TRIGGER user_joined AFTER INSERT ON user WHEN NEW.joined IS NULL BEGIN
  UPDATE user SET joined = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

-- What the settings page shows of each session.
ALTER TABLE user_session ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE user_session ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE user_session ADD COLUMN last_seen TIMESTAMP DEFAULT NULL;

-- One-time links: only the SHA-256 of the token is kept, so a copy of the database
-- cannot be used to reset a password. A link is deleted when used.
-- kind 'reset' names the user whose password it sets; 'invite' lets one person register.
CREATE TABLE one_time_link (
  token_hash TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('reset', 'invite')),
  user_id INTEGER REFERENCES user (id) ON DELETE CASCADE,
  created_by INTEGER REFERENCES user (id) ON DELETE SET NULL,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires TIMESTAMP NOT NULL,
  CHECK ((kind = 'reset') = (user_id IS NOT NULL))
);

-- Deleting a user deletes their links through these, not a table scan.
CREATE INDEX one_time_link_user ON one_time_link (user_id);
CREATE INDEX one_time_link_created_by ON one_time_link (created_by);

-- The site's settings an admin edits on the Admin page; a missing row means the
-- configured value (SITE_DESCRIPTION, REGISTRATION_OPEN) or the default.
CREATE TABLE site_setting (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
