-- The writer's desk: drafts, scheduled posts and image descriptions.

-- A draft (1) is seen by its author only. Any other post is published at its `created`
-- time, which is its publication time: in the future, it is scheduled. Existing posts,
-- and rows inserted without this column (the tutorial's data.sql), stay published.
ALTER TABLE post ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;

-- The image's alt text; empty means a decorative image.
ALTER TABLE post ADD COLUMN image_alt TEXT NOT NULL DEFAULT '';

-- List pages show published posts only, newest first: they walk these partial indexes,
-- which hold no drafts (and whose created bound skips the scheduled ones at once).
DROP INDEX post_created;
CREATE INDEX post_published ON post (created, id) WHERE draft = 0;
CREATE INDEX post_author_published ON post (author_id, created, id) WHERE draft = 0;
-- The drafts among a range of ids, that search leaves out of its matches.
CREATE INDEX post_drafts ON post (id) WHERE draft = 1;
