-- Test data in the tutorial's shape: two users with tutorial-era pbkdf2 hashes
-- (passwords "test" and "other") and one post, inserted the tutorial's way (its body
-- holds a newline, written in SQL both backends read).
INSERT INTO user (username, password)
VALUES
  ('test', 'pbkdf2:sha256:50000$UbrHJr3G$26ebbf257383df8015b201706755c1f3827248c26c224974817a42a472fbe9eb'),
  ('other', 'pbkdf2:sha256:50000$f1BeSc8R$41cf62ee957280b6a363bc778741d66595908fc6d051af588be1d0448e33c15f');

INSERT INTO post (title, body, author_id, created)
VALUES
  ('test title', 'test
body', 1, '2018-01-01 00:00:00');
