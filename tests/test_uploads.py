import io
import os

import pytest
from images import animated_gif, image_bytes, jpeg_with_location, png_bomb
from PIL import Image

from flaskr.db import get_db


@pytest.fixture
def uploads(app):
    """The upload folder's file names (hidden partial files included)."""
    folder = app.config["UPLOAD_FOLDER"]
    return lambda: sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def post_image(app, id=None):
    with app.app_context():
        db = get_db()
        if id is None:
            id = db.execute("SELECT MAX(id) FROM post").fetchone()[0]
        return db.execute("SELECT image FROM post WHERE id = ?", (id,)).fetchone()[0]


def fetch(client, url):
    """GET a file, returning (response, body) with the file closed again."""
    with client.get(url) as response:
        return response, response.get_data()


def create(client, data, filename="photo.png", title="with image", content_type=None):
    return client.post(
        "/create",
        data={"title": title, "body": "", "image": (io.BytesIO(data), filename, content_type)},
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize(
    ("kind", "extension", "mimetype"),
    [
        ("PNG", "png", "image/png"),
        ("JPEG", "jpg", "image/jpeg"),
        ("GIF", "gif", "image/gif"),
        ("WEBP", "webp", "image/webp"),
    ],
)
def test_upload_each_format(app, client, auth, uploads, kind, extension, mimetype):
    auth.login()
    response = create(client, image_bytes(kind), filename="whatever.bin")
    assert response.status_code == 302
    name = post_image(app)
    assert name.endswith("." + extension) and len(name) == 32 + 1 + len(extension)
    assert uploads() == [name]

    page = client.get("/").data.decode()
    assert f'src="/uploads/{name}"' in page
    assert f'src="/uploads/{name}"' in client.get("/2/with-image").data.decode()

    served, data = fetch(client, f"/uploads/{name}")
    assert served.status_code == 200
    assert served.mimetype == mimetype
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"] == "sandbox"
    assert "immutable" in served.headers["Cache-Control"]
    assert Image.open(io.BytesIO(data)).format == kind


def test_metadata_is_dropped(app, client, auth):
    original = jpeg_with_location()
    assert Image.open(io.BytesIO(original)).getexif()
    auth.login()
    create(client, original, filename="holiday.jpg")
    _, stored = fetch(client, f"/uploads/{post_image(app)}")
    image = Image.open(io.BytesIO(stored))
    assert not image.getexif()
    assert b"Secret Camera" not in stored


def test_animation_is_kept(app, client, auth):
    auth.login()
    create(client, animated_gif(frames=3), filename="anim.gif")
    _, stored = fetch(client, f"/uploads/{post_image(app)}")
    assert Image.open(io.BytesIO(stored)).n_frames == 3


def truncated_png():
    data = image_bytes("PNG", size=(200, 200), color=(1, 2, 3, 255))
    return data[: len(data) // 2]


HOSTILE_FILES = {
    "text named .png": (b"just some text, honestly", "notes.png", "image/png"),
    "php named .png": (b"<?php system($_GET['c']); ?>", "shell.php.png", "image/png"),
    "svg with script": (
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "drawing.svg",
        "image/svg+xml",
    ),
    "html": (b"<html><script>alert(1)</script></html>", "page.png", "text/html"),
    "truncated png": (truncated_png(), "cut.png", "image/png"),
    "bmp": (image_bytes("BMP"), "old.bmp", "image/bmp"),
    "tiff": (image_bytes("TIFF"), "scan.tiff", "image/tiff"),
    "png signature only": (b"\x89PNG\r\n\x1a\n", "empty.png", "image/png"),
}


@pytest.mark.parametrize("case", HOSTILE_FILES)
def test_hostile_files_are_refused(app, client, auth, uploads, count, case):
    data, filename, content_type = HOSTILE_FILES[case]
    auth.login()
    response = create(client, data, filename=filename, content_type=content_type)
    assert response.status_code == 400
    assert b"The image must be a PNG, JPEG, GIF or WebP file." in response.data
    assert count("post") == 1
    assert uploads() == []


def test_decompression_bomb_is_refused(client, auth, uploads, count):
    auth.login()
    response = create(client, png_bomb(50_000), filename="bomb.png")
    assert response.status_code == 400
    assert b"The image has too many pixels." in response.data
    assert count("post") == 1
    assert uploads() == []


def test_pixel_limit_is_configurable(app, client, auth):
    app.config["IMAGE_MAX_PIXELS"] = 100
    auth.login()
    response = create(client, image_bytes("PNG", size=(11, 10)))
    assert response.status_code == 400
    assert b"too many pixels" in response.data
    assert create(client, image_bytes("PNG", size=(10, 10))).status_code == 302


def test_too_large_file_is_refused(app, client, auth, uploads, count):
    app.config["IMAGE_MAX_BYTES"] = 1000
    auth.login()
    response = create(client, image_bytes("PNG", size=(300, 300), color=None) + b"\0" * 2000)
    assert response.status_code == 400
    assert b"The image must be at most 1,000 bytes." in response.data
    assert count("post") == 1
    assert uploads() == []


def test_path_traversal_name_is_ignored(app, client, auth, uploads, tmp_path):
    auth.login()
    create(client, image_bytes("PNG"), filename="../../../../evil.png")
    (name,) = uploads()
    assert name != "evil.png" and not (tmp_path / "evil.png").exists()


def test_no_file_means_no_image(app, client, auth, uploads):
    auth.login()
    response = create(client, b"", filename="")
    assert response.status_code == 302
    assert post_image(app) is None
    assert uploads() == []


def test_missing_title_with_image_stores_nothing(client, auth, uploads, count):
    auth.login()
    response = create(client, image_bytes("PNG"), title="")
    assert b"Title is required." in response.data
    assert count("post") == 1
    assert uploads() == []


def test_failed_write_leaves_no_file(app, client, auth, uploads, count):
    with app.app_context():
        get_db().execute(
            "CREATE TRIGGER no_posts BEFORE INSERT ON post BEGIN SELECT RAISE(ABORT, 'full'); END"
        )
    auth.login()
    with pytest.raises(Exception, match="full"):
        create(client, image_bytes("PNG"))
    assert count("post") == 1
    assert uploads() == []


def update(client, id=1, **fields):
    data = {"title": "updated", "body": "", **fields}
    return client.post(f"/{id}/update", data=data, content_type="multipart/form-data")


def test_update_adds_replaces_and_removes_the_image(app, client, auth, uploads):
    auth.login()
    update(client, image=(io.BytesIO(image_bytes("PNG")), "a.png"))
    first = post_image(app, 1)
    assert uploads() == [first]
    assert b"Remove this image" in client.get("/1/update").data

    update(client)  # no new file: the image stays
    assert post_image(app, 1) == first

    update(client, image=(io.BytesIO(image_bytes("JPEG")), "b.jpg"))
    second = post_image(app, 1)
    assert second != first and uploads() == [second]

    update(client, remove_image="1")
    assert post_image(app, 1) is None
    assert uploads() == []


def test_update_with_bad_image_keeps_the_old_one(app, client, auth, uploads):
    auth.login()
    update(client, image=(io.BytesIO(image_bytes("PNG")), "a.png"))
    first = post_image(app, 1)
    response = update(client, title="changed", image=(io.BytesIO(b"nope"), "b.png"))
    assert response.status_code == 400
    assert post_image(app, 1) == first
    assert uploads() == [first]
    with app.app_context():
        assert get_db().execute("SELECT title FROM post WHERE id = 1").fetchone()[0] == "updated"


def test_deleting_the_post_deletes_its_image(app, client, auth, uploads):
    auth.login()
    create(client, image_bytes("PNG"))
    name = post_image(app, 2)
    assert uploads() == [name]
    client.post("/2/delete")
    assert uploads() == []
    assert client.get(f"/uploads/{name}").status_code == 404


@pytest.mark.parametrize(
    "name",
    ["../secret_key", "..%2Fsecret_key", "a.png", "0" * 32 + ".svg", "0" * 32 + ".png"],
)
def test_unknown_or_hostile_upload_names_are_404(client, name):
    assert client.get(f"/uploads/{name}").status_code == 404


def test_deleting_a_missing_file_is_harmless(app):
    from flaskr.uploads import delete_image

    with app.app_context():
        delete_image("0" * 32 + ".png")
        delete_image(None)
