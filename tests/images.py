"""Image files for upload tests, made on the fly, and helpers to upload and read them back."""

import io
import os
import struct
import zlib

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from flaskr.db import get_db

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
# Metadata an uploader may not know their file carries; none of it may be served.
SECRET = b"Secret Camera 3000 at 51N"


def image_bytes(kind="PNG", size=(40, 30), color=(200, 40, 40), **options):
    """Encode a small solid image in the given format."""
    mode = "RGBA" if kind in ("PNG", "WEBP") else "RGB"
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format=kind, **options)
    return out.getvalue()


def noise(size=(100, 100)):
    """A PNG of random pixels: it does not compress, so its bytes need room (30 KB here)."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, format="PNG")
    return out.getvalue()


def jpeg_with_location():
    """A JPEG carrying EXIF metadata: a camera model and a GPS block."""
    exif = Image.Exif()
    exif[0x0110] = "Secret Camera 3000"  # Model
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPSInfo
    return image_bytes("JPEG", exif=exif.tobytes())


def animated(kind="GIF", frames=3, size=(20, 20), **options):
    """An animation of `frames` solid frames of changing colours."""
    out = io.BytesIO()
    images = [Image.new("RGB", size, COLORS[k % 4]) for k in range(frames)]
    images[0].save(
        out, format=kind, save_all=True, append_images=images[1:], duration=100, **options
    )
    return out.getvalue()


def animated_gif(frames=3):
    return animated("GIF", frames)


def gif_of_tiny_frames(frames, junk=b""):
    """A GIF of `frames` frames of 1x1 pixel, 23 bytes each: 50,000 make 1.15 MB.

    `junk` goes before each frame: bytes the decoder skips.
    """
    screen = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    control = b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # a graphic control extension
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return screen + (junk + control + frame) * frames + b"\x3b"


def gif_that_grows(side):
    """A GIF announcing 1x1 pixel, whose second frame is side x side: decoding grows it."""
    out = io.BytesIO()
    Image.new("P", (side, side), 1).save(out, format="GIF")
    big = out.getvalue()
    # The big image's pixel data: after its header, colours, extensions and descriptor.
    pos = 13 + (3 << ((big[10] & 7) + 1))
    while big[pos] == 0x21:
        pos += 3 + big[pos + 2]
        while big[pos]:
            pos += 1 + big[pos]
        pos += 1
    pixels = big[pos + 10 : -1]
    tiny = gif_of_tiny_frames(1)
    return tiny[:-1] + b"\x2c" + struct.pack("<HHHHB", 0, 0, side, side, 0) + pixels + b"\x3b"


def with_metadata(kind):
    """An image in `kind` carrying every kind of metadata its format can hold."""
    exif = Image.Exif()
    exif[0x0110] = SECRET.decode()
    options = {"icc_profile": SECRET, "exif": exif.tobytes()}
    if kind == "GIF":
        options = {"comment": SECRET}
    elif kind == "PNG":
        text = PngInfo()
        text.add_text("Author", SECRET.decode())
        text.add_text("Software", SECRET.decode(), zip=True)
        text.add_itxt("Comment", SECRET.decode(), lang="en", tkey="Comment")
        options["pnginfo"] = text
    return image_bytes(kind, **options)


def mpo():
    """A multi-picture JPEG, as dual-lens phones make: two pictures in one file."""
    out = io.BytesIO()
    left, right = (Image.new("RGB", (30, 20), color) for color in COLORS[:2])
    left.save(out, format="MPO", save_all=True, append_images=[right])
    return out.getvalue()


def jpeg_of_scans(scans):
    """A progressive JPEG of `scans` scans: its shortest scan repeated, as a hostile file does.

    The decoder warns about the repeats and decodes each again, over every pixel.
    """
    out = io.BytesIO()
    Image.new("RGB", (64, 64), COLORS[0]).save(out, format="JPEG", progressive=True)
    data = out.getvalue()
    # Each scan runs from its marker to the next marker that is not a restart (the end
    # of the file, here, for the last one).
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    ends = [*starts[1:], len(data) - 2]
    shortest = min((data[a:b] for a, b in zip(starts, ends, strict=True)), key=len)
    return data[:-2] + shortest * (scans - len(starts)) + data[-2:]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side=50_000):
    """A tiny PNG whose header claims side x side pixels: a decompression bomb."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + side // 8) * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def post_image(client, data, filename="photo.png", title="with image", content_type=None):
    """Create a post with an image through the view; return the response.

    The body is encoded here, in memory: the test client would spool a large one to a
    temporary file that it never closes.
    """
    image = FileStorage(io.BytesIO(data), filename=filename, content_type=content_type)
    boundary, body = encode_multipart({"title": title, "body": "", "image": image})
    return client.post(
        "/create", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def image_name(app, id=None):
    """The stored image name of a post (the newest by default), or None."""
    with app.app_context():
        db = get_db()
        if id is None:
            id = db.execute("SELECT MAX(id) FROM post").fetchone()[0]
        return db.execute("SELECT image FROM post WHERE id = ?", (id,)).fetchone()[0]


def stored_names(app, table="image"):
    """The names of the stored images (of the pending ones with table="pending_image")."""
    with app.app_context():
        return sorted(row[0] for row in get_db().execute(f"SELECT name FROM {table}"))


def fetch(client, url, **options):
    """GET a file, returning (response, body) with the file closed again."""
    with client.get(url, **options) as response:
        return response, response.get_data()


def stored(app, client, id=None):
    """The bytes of a post's image, as the site serves them."""
    return fetch(client, f"/uploads/{image_name(app, id)}")[1]


def opened(data):
    """Decode image bytes."""
    return Image.open(io.BytesIO(data))
