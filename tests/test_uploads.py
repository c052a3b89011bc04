"""Uploaded images: recognised by decoding, re-encoded without metadata, bounded work."""

import io
import os
import re
import time

import pytest
from images import (
    SECRET,
    animated,
    animated_gif,
    fetch,
    gif_of_tiny_frames,
    gif_that_grows,
    image_bytes,
    image_name,
    jpeg_of_scans,
    jpeg_with_location,
    mpo,
    opened,
    png_bomb,
    post_image,
    stored,
    stored_names,
    with_metadata,
)
from PIL import Image

from flaskr import uploads as flaskr_uploads
from flaskr.uploads import utc_text


@pytest.fixture
def uploads(app):
    """The names of the stored images."""
    return lambda: stored_names(app)


@pytest.fixture
def pending(app):
    """The names of the images kept for writers whose forms were not saved."""
    return lambda: stored_names(app, "pending_image")


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
    response = post_image(client, image_bytes(kind), filename="whatever.bin")
    assert response.status_code == 302
    name = image_name(app)
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
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.content_length == len(data)
    assert opened(data).format == kind
    # A browser that has it asks whether it changed, and is told it did not.
    etag, modified = served.headers["ETag"], served.headers["Last-Modified"]
    again, body = fetch(client, f"/uploads/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and body == b""
    again, body = fetch(client, f"/uploads/{name}", headers={"If-Modified-Since": modified})
    assert again.status_code == 304 and body == b""
    part, body = fetch(client, f"/uploads/{name}", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and body == data[:10]


def test_metadata_is_dropped(app, client, auth):
    original = jpeg_with_location()
    assert opened(original).getexif()
    auth.login()
    post_image(client, original, filename="holiday.jpg")
    data = stored(app, client)
    assert not opened(data).getexif()
    assert b"Secret Camera" not in data


# What a decoder reports of each kind of metadata, for each format that can carry it.
METADATA = {
    "GIF": ("comment",),
    "PNG": ("icc_profile", "exif", "Author", "Software", "Comment"),
    "WEBP": ("icc_profile", "exif"),
}


@pytest.mark.parametrize("kind", METADATA)
def test_comments_profiles_and_text_are_dropped(app, client, auth, kind):
    original = with_metadata(kind)
    assert set(METADATA[kind]) <= set(opened(original).info)
    auth.login()
    assert post_image(client, original).status_code == 302
    data = stored(app, client)
    assert not set(METADATA[kind]) & set(opened(data).info)
    assert SECRET not in data


@pytest.mark.parametrize(
    "original",
    [
        animated("GIF", comment=SECRET),
        # A comment block before every frame, the first included.
        gif_of_tiny_frames(3, junk=b"\x21\xfe" + bytes([len(SECRET)]) + SECRET + b"\x00"),
    ],
)
def test_an_animated_gifs_comments_are_dropped(app, client, auth, original):
    assert SECRET in original
    auth.login()
    assert post_image(client, original).status_code == 302
    data = stored(app, client)
    assert opened(data).format == "GIF"
    assert SECRET not in data


@pytest.mark.parametrize("kind", ["GIF", "PNG", "WEBP"])
def test_animation_is_kept(app, client, auth, kind):
    auth.login()
    post_image(client, animated(kind, frames=3))
    image = opened(stored(app, client))
    assert image.format == kind and image.n_frames == 3


def test_transparency_of_an_animated_gif_is_kept(app, client, auth):
    frames = [Image.new("RGBA", (20, 20), (255, 0, 0, 0)) for _ in range(2)]
    frames[1].paste((0, 0, 255, 255), (0, 0, 10, 10))
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], disposal=2)
    auth.login()
    post_image(client, out.getvalue())
    image = opened(stored(app, client))
    image.seek(1)
    rgba = image.convert("RGBA")
    assert rgba.getpixel((15, 15))[3] == 0
    assert rgba.getpixel((5, 5)) == (0, 0, 255, 255)


def test_a_multi_picture_jpeg_is_stored_as_its_first_picture(app, client, auth, uploads):
    original = mpo()
    assert opened(original).format == "MPO"
    auth.login()
    assert post_image(client, original, filename="dual.jpg").status_code == 302
    assert image_name(app).endswith(".jpg")
    image = opened(stored(app, client))
    assert image.format == "JPEG" and not hasattr(image, "n_frames")
    red, green, blue = image.convert("RGB").getpixel((15, 10))
    assert red > 200 and green < 60 and blue < 60


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
    response = post_image(client, data, filename=filename, content_type=content_type)
    assert response.status_code == 400
    assert b"The image must be a PNG, JPEG, GIF or WebP file." in response.data
    assert count("post") == 1
    assert uploads() == []


def test_decompression_bomb_is_refused(client, auth, uploads, count):
    auth.login()
    response = post_image(client, png_bomb(50_000), filename="bomb.png")
    assert response.status_code == 400
    assert b"The image has too many pixels." in response.data
    assert count("post") == 1
    assert uploads() == []


def test_every_frame_counts_against_the_pixel_limit(app, client, auth, uploads, count):
    app.config["IMAGE_MAX_PIXELS"] = 1000
    auth.login()
    response = post_image(client, animated("GIF", frames=3, size=(20, 20)))
    assert response.status_code == 400
    assert b"The image has too many pixels." in response.data
    assert count("post") == 1 and uploads() == []
    assert post_image(client, animated("GIF", frames=2, size=(20, 20))).status_code == 302


def test_a_gif_frame_larger_than_the_gif_counts_at_its_size(app, client, auth, uploads):
    data = gif_that_grows(40)
    image = opened(data)
    assert image.size == (1, 1)
    image.seek(1)
    assert image.size == (40, 40)  # the decoder grows its canvas to the frame
    app.config["IMAGE_MAX_PIXELS"] = 40 * 40 * 2 - 1
    auth.login()
    assert b"The image has too many pixels." in post_image(client, data).data
    assert uploads() == []
    app.config["IMAGE_MAX_PIXELS"] = 40 * 40 * 2
    assert post_image(client, data).status_code == 302


@pytest.mark.parametrize("kind", ["GIF", "PNG", "WEBP"])
def test_frame_limit_is_configurable(app, client, auth, uploads, count, kind):
    app.config["IMAGE_MAX_FRAMES"] = 3
    auth.login()
    response = post_image(client, animated(kind, frames=4))
    assert response.status_code == 400
    assert b"The image must have at most 3 frames." in response.data
    assert count("post") == 1 and uploads() == []
    assert post_image(client, animated(kind, frames=3)).status_code == 302


def test_a_gif_of_fifty_thousand_frames_is_refused(client, auth, uploads, count):
    data = gif_of_tiny_frames(50_000)
    assert len(data) < 1_200_000
    auth.login()
    response = post_image(client, data)
    assert response.status_code == 400
    assert b"The image must have at most 100 frames." in response.data
    assert count("post") == 1 and uploads() == []


def test_gif_frames_are_counted_as_the_decoder_finds_them(app, client, auth):
    # Bytes between blocks are skipped by the decoder; counting must skip them too.
    data = gif_of_tiny_frames(4, junk=b"\x00junk")
    assert opened(data).n_frames == 4
    app.config["IMAGE_MAX_FRAMES"] = 3
    auth.login()
    response = post_image(client, data)
    assert b"The image must have at most 3 frames." in response.data
    app.config["IMAGE_MAX_FRAMES"] = 4
    assert post_image(client, data).status_code == 302


def test_a_truncated_animation_is_counted_without_error(app, client, auth):
    data = animated_gif(frames=3)[:-5]  # the last frame's data is cut short
    app.config["IMAGE_MAX_FRAMES"] = 2
    auth.login()
    assert b"at most 2 frames" in post_image(client, data).data


def test_a_jpeg_of_too_many_scans_is_refused(app, client, auth, uploads, count):
    # Each scan costs a pass over every pixel: thousands of tiny ones take minutes.
    hostile = jpeg_of_scans(101)
    assert opened(hostile).convert("RGB").getpixel((0, 0))[0] > 200  # it decodes: red
    auth.login()
    response = post_image(client, hostile)
    assert response.status_code == 400
    assert b"The image must be stored in at most 100 scans." in response.data
    assert count("post") == 1 and uploads() == []
    assert post_image(client, jpeg_of_scans(100)).status_code == 302


def test_pixel_limit_is_configurable(app, client, auth):
    app.config["IMAGE_MAX_PIXELS"] = 100
    auth.login()
    response = post_image(client, image_bytes("PNG", size=(11, 10)))
    assert response.status_code == 400
    assert b"too many pixels" in response.data
    assert post_image(client, image_bytes("PNG", size=(10, 10))).status_code == 302


def test_too_large_file_is_refused(app, client, auth, uploads, count):
    app.config["IMAGE_MAX_BYTES"] = 1000
    auth.login()
    response = post_image(client, image_bytes("PNG", size=(300, 300), color=None) + b"\0" * 2000)
    assert response.status_code == 400
    assert b"The image must be at most 1,000 bytes." in response.data
    assert count("post") == 1
    assert uploads() == []


def test_size_limit_is_inclusive(app, client, auth):
    data = image_bytes("PNG")
    app.config["IMAGE_MAX_BYTES"] = len(data) - 1
    auth.login()
    assert b"The image must be at most" in post_image(client, data).data
    app.config["IMAGE_MAX_BYTES"] = len(data)
    assert post_image(client, data).status_code == 302


def test_path_traversal_name_is_ignored(app, client, auth, uploads):
    auth.login()
    post_image(client, image_bytes("PNG"), filename="../evil.png")
    (name,) = uploads()
    assert re.fullmatch(r"[0-9a-f]{32}\.png", name)
    # The folder a name joined to the upload folder would have reached.
    assert "evil.png" not in os.listdir(os.path.dirname(app.config["UPLOAD_FOLDER"]))


def test_no_file_means_no_image(app, client, auth, uploads):
    auth.login()
    response = post_image(client, b"", filename="")
    assert response.status_code == 302
    assert image_name(app) is None
    assert uploads() == []


def test_missing_title_with_image_stores_nothing(client, auth, uploads, count):
    auth.login()
    response = post_image(client, image_bytes("PNG"), title="")
    assert b"Title is required." in response.data
    assert count("post") == 1
    # Only kept aside for the writer (tests/test_blog.py), not among the site's images.
    assert uploads() == []


@pytest.mark.sqlite_only
def test_failed_write_leaves_no_image(query, client, auth, uploads, count):
    query("CREATE TRIGGER no_posts BEFORE INSERT ON post BEGIN SELECT RAISE(ABORT, 'full'); END")
    auth.login()
    with pytest.raises(Exception, match="full"):
        post_image(client, image_bytes("PNG"))
    assert count("post") == 1
    assert uploads() == []


def update(client, id=1, **fields):
    data = {"title": "updated", "body": "", **fields}
    return client.post(f"/{id}/update", data=data, content_type="multipart/form-data")


def test_update_adds_replaces_and_removes_the_image(app, client, auth, uploads):
    auth.login()
    update(client, image=(io.BytesIO(image_bytes("PNG")), "a.png"))
    first = image_name(app, 1)
    assert uploads() == [first]
    assert b"Remove this image" in client.get("/1/update").data

    update(client)  # no new file: the image stays
    assert image_name(app, 1) == first

    update(client, image=(io.BytesIO(image_bytes("JPEG")), "b.jpg"))
    second = image_name(app, 1)
    assert second != first and uploads() == [second]

    update(client, remove_image="1")
    assert image_name(app, 1) is None
    assert uploads() == []


def test_update_with_bad_image_keeps_the_old_one(app, client, auth, uploads, query):
    auth.login()
    update(client, image=(io.BytesIO(image_bytes("PNG")), "a.png"))
    first = image_name(app, 1)
    response = update(client, title="changed", image=(io.BytesIO(b"nope"), "b.png"))
    assert response.status_code == 400
    assert image_name(app, 1) == first
    assert uploads() == [first]
    assert query("SELECT title FROM post WHERE id = 1") == [("updated",)]


def test_deleting_the_post_deletes_its_image(app, client, auth, uploads):
    auth.login()
    post_image(client, image_bytes("PNG"))
    name = image_name(app, 2)
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


def test_image_work_waits_for_a_free_slot_then_answers_503(
    app, client, auth, monkeypatch, snapshot
):
    slots = flaskr_uploads.image_slots
    monkeypatch.setattr(slots, "wait", 0.05)
    auth.login()
    before = snapshot()
    with slots.held(), slots.held():  # two re-encodes already running
        response = post_image(client, image_bytes("PNG"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert b'class="site-nav"' in response.data
    assert b"The server is busy processing images." in response.data
    assert snapshot() == before
    assert post_image(client, image_bytes("PNG")).status_code == 302


def test_a_chosen_image_waits_for_its_writer_only(app, client, auth, uploads, pending, query):
    auth.login()
    page = post_image(client, image_bytes("PNG"), title=" ").data.decode()
    assert "Current image (not saved yet):" in page
    (address,) = re.findall(r'src="(/uploads/pending/\w+\.png)"', page)
    served, data = fetch(client, address)
    assert served.status_code == 200 and data.startswith(b"\x89PNG")
    assert "no-store" in served.headers["Cache-Control"]
    other = app.test_client()
    assert other.get(address).status_code == 404
    other.post("/auth/login", data={"username": "other", "password": "other"})
    assert other.get(address).status_code == 404
    # A preview shows it in the post, described as the writer says.
    data = {"title": "t", "body": "", "action": "preview", "image_alt": "owl"}
    page = client.post("/create", data=data).data.decode()
    assert re.search(rf'<img class="post-image" src="{address}"\s+alt="owl"', page)
    # Sent again without the file, the post gets the image chosen before.
    assert client.post("/create", data={"title": "kept", "body": ""}).status_code == 302
    (name,) = uploads()
    assert pending() == []
    assert client.get(address).status_code == 404
    assert query("SELECT image FROM post WHERE id = 2") == [(name,)]


def test_a_chosen_image_can_be_dropped_and_expires(app, client, auth, monkeypatch, pending, query):
    auth.login()
    post_image(client, image_bytes("PNG"), title="")
    assert len(pending()) == 1
    page = client.post("/create", data={"title": "", "body": "", "remove_image": "1"}).data
    assert b"Current image" not in page and pending() == []
    post_image(client, image_bytes("PNG"), title="")
    # Not for another form: a post's edit form does not offer it.
    assert b"not saved yet" not in client.post("/1/update", data={"title": ""}).data
    # After an hour it is forgotten.
    later = time.time() + flaskr_uploads.PENDING_SECONDS + 1
    monkeypatch.setattr(flaskr_uploads.time, "time", lambda: later)
    assert b"not saved yet" not in client.post("/create", data={"title": ""}).data
    # Images kept for writers who went away are deleted when the next one comes.
    left, recent = f"{'a' * 32}.png", f"{'b' * 32}.png"
    for name, moment in ((left, 0), (recent, later)):
        query(
            "INSERT INTO pending_image (name, type, data, created) VALUES (?, 'image/png', ?, ?)",
            (name, image_bytes("PNG"), utc_text(moment)),
        )
    post_image(client, image_bytes("PNG"), title="")
    (mine,) = [name for name in pending() if name != recent]
    assert mine != left
    # A pending image gone (another server swept it) leaves the post without an image.
    query("DELETE FROM pending_image WHERE name = ?", (mine,))
    assert client.post("/create", data={"title": "t", "body": ""}).status_code == 302
    assert image_name(app) is None


def test_a_chosen_image_is_kept_whichever_server_gets_the_form_again(make_app, app, uploads):
    first, second = (make_app(SECRET_KEY="one site").test_client() for _ in range(2))
    first.post("/auth/login", data={"username": "test", "password": "test"})
    page = post_image(first, image_bytes("PNG"), title="").data.decode()
    (address,) = re.findall(r'src="(/uploads/pending/\w+\.png)"', page)
    second.set_cookie("session", first.get_cookie("session").value)
    assert fetch(second, address)[0].status_code == 200
    assert second.post("/create", data={"title": "kept", "body": ""}).status_code == 302
    (name,) = uploads()
    assert fetch(first, f"/uploads/{name}")[1].startswith(b"\x89PNG")
