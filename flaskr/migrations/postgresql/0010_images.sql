-- Stateless app servers: images and the generated signing key live in the database, so
-- every server sees every image and signs with the same key, and a backup holds it all.

-- Every stored image (a post's, an avatar), re-encoded, under its server-made name. Its
-- width and height are NULL only for a file moved in by init-db that would not decode.
CREATE TABLE image (
  name TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  data BYTEA NOT NULL,
  width INTEGER,
  height INTEGER,
  created TIMESTAMP NOT NULL DEFAULT utc_now()
);
-- Images are compressed already: stored out of line without another try at compressing.
ALTER TABLE image ALTER COLUMN data SET STORAGE EXTERNAL;
-- Pages show images: a change empties every server's page cache (see 0009).
CREATE TRIGGER image_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON image
  FOR EACH STATEMENT EXECUTE FUNCTION site_changed();

-- An image chosen in a form that was not saved (an error, a preview), kept for its writer
-- whichever server gets the form again; swept once older than an hour.
CREATE TABLE pending_image (
  name TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  data BYTEA NOT NULL,
  created TIMESTAMP NOT NULL
);
ALTER TABLE pending_image ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX pending_image_created ON pending_image (created);

-- The key that signs sessions and device cookies when SECRET_KEY is not configured: one
-- row, created by the first server that needs it. Never exported.
CREATE TABLE signing_key (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  value TEXT NOT NULL
);
