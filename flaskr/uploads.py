"""Images: validating and re-encoding uploads, storing them in the database, serving them."""

import io
import itertools
import os
import re
import secrets
import shutil
import struct
import time
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, send_file, session
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from .db import get_db, transaction
from .forms import FormError
from .limits import Slots

bp = Blueprint("uploads", __name__)

# Formats accepted, as Pillow names them, with the extension and type they are served as.
FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
MIMETYPES = dict(FORMATS.values())
# Names are always made here: 32 hex digits and one of our extensions.
NAME_PATTERN = re.compile(r"[0-9a-f]{32}\.(?:png|jpg|gif|webp)")
NOT_AN_IMAGE = "The image must be a PNG, JPEG, GIF or WebP file."
# What an encoder would copy from the original: camera, location, editing history.
METADATA_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "icc_profile")
# Encoder settings that keep re-encoding an image at the pixel limit under a second of CPU:
# the defaults cost up to three times more for files a few percent smaller.
ENCODE_OPTIONS = {
    "JPEG": {"quality": 88},
    "PNG": {"compress_level": 5},
    "GIF": {},
    "WEBP": {"method": 0},
}
# A progressive JPEG is decoded scan by scan, each pass over every pixel: common encoders
# write at most about ten, a hostile file thousands of tiny ones (seconds of CPU per 2,000).
JPEG_MAX_SCANS = 100
# The marker that starts a scan; entropy-coded data never holds it (a 0xFF there is
# followed by 0x00 or a restart number), so counting it counts scans (metadata aside).
JPEG_SCAN_MARKER = b"\xff\xda"
# A GIF's blocks start with one of these bytes; the decoder skips any other byte.
GIF_BLOCK = re.compile(rb"[!,;]")
# How long an image chosen in a form that was not saved (an error, a preview) is kept for
# its writer, in seconds; the folder, under an older Flaskr's uploads, that held those.
PENDING_SECONDS = 60 * 60
PENDING_FOLDER = "pending"
# Decoding and encoding take a core and up to a few hundred MB each: two at once at most.
image_slots = Slots(2, "processing images")


class ImageError(FormError):
    """An uploaded file that is not an acceptable image; the message is for the user."""


def upload_folder():
    """Return the folder where an older Flaskr kept uploaded images, moved in by init-db."""
    return current_app.config["UPLOAD_FOLDER"]


def read_image(file):
    """Decode an uploaded file and return (bytes, extension) re-encoded, or None if empty.

    The file is recognised by decoding it, never by its name or Content-Type. Re-encoding
    drops metadata (location, camera) and anything hidden after the image data.
    """
    if file is None:
        return None
    max_bytes = current_app.config["IMAGE_MAX_BYTES"]
    data = file.read(max_bytes + 1)
    if not data:
        return None
    if len(data) > max_bytes:
        raise ImageError(f"The image must be at most {max_bytes:,} bytes.")
    try:
        # Reading headers can cost too (a PNG of 400,000 tiny chunks takes a second).
        with image_slots.held():
            return reencode(data)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError("The image has too many pixels.") from e
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, ValueError) as e:
        # Unknown formats, truncated or corrupt data, and modes no encoder takes.
        raise ImageError(NOT_AN_IMAGE) from e


def reencode(data):
    """Decode image bytes and encode them again; raise Pillow's errors on bad data.

    Frames and pixels are counted from the headers, before a single pixel is decoded,
    so a file that would take long to decode is refused at once.
    """
    image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    max_frames = current_app.config["IMAGE_MAX_FRAMES"]
    frames, (width, height) = count_frames(image, data, max_frames)
    if frames > max_frames:
        raise ImageError(f"The image must have at most {max_frames:,} frames.")
    pixels = width * height * frames
    if pixels > current_app.config["IMAGE_MAX_PIXELS"]:
        raise Image.DecompressionBombError(f"{pixels} pixels")
    if image_format(image) == "JPEG" and data.count(JPEG_SCAN_MARKER) > JPEG_MAX_SCANS:
        raise ImageError(f"The image must be stored in at most {JPEG_MAX_SCANS} scans.")
    return encode(image, frames)


def image_format(image):
    """The format an image is stored in: a multi-picture JPEG is kept as a plain JPEG."""
    return "JPEG" if image.format == "MPO" else image.format


def count_frames(image, data, limit):
    """Return an image's frame count (stopping once past `limit`) and size, from headers."""
    kind = image_format(image)
    if kind == "GIF":
        return gif_frames(data, limit)
    if kind == "JPEG":
        return 1, image.size  # only the first picture of a multi-picture file is kept
    # Both read the count from a header (an animated PNG's acTL, WebP's container).
    return image.n_frames, image.size


def gif_frames(data, limit):
    """Count a GIF's frames by walking its blocks as the decoder does, up to limit + 1.

    Return the count and the size the decoder's canvas grows to: a frame may reach past
    the size the file announces. The decoder's own count reads through every frame; a
    1 MB file can hold 50,000.
    """
    width, height = struct.unpack_from("<HH", data, 6)
    pos = 13 + color_table_size(data[10])  # header and screen descriptor, global colours
    frames = 0
    while frames <= limit:
        block = GIF_BLOCK.search(data, pos)
        if block is None or block[0] == b";":
            break
        pos = block.end()
        if block[0] == b",":
            frames += 1
            # Position and size, flags, local colours, then the LZW code size; a cut
            # descriptor reads as zeros (the decoder refuses it).
            x, y, w, h, flags = struct.unpack("<HHHHB", data[pos : pos + 9].ljust(9, b"\0"))
            width, height = max(width, x + w), max(height, y + h)
            pos += 9 + color_table_size(flags) + 1
        else:
            pos += 1  # the extension's label
        pos = skip_sub_blocks(data, pos)
    return frames, (width, height)


def color_table_size(flags):
    """The size in bytes of the colour table a GIF descriptor's flags announce."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def skip_sub_blocks(data, pos):
    """Return the position after a chain of GIF data sub-blocks (or the end of the data)."""
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos


def encode(image, frames):
    """Re-encode a decoded image in its own format, without metadata."""
    kind = image_format(image)
    options = dict(ENCODE_OPTIONS[kind])
    if frames > 1:
        options["save_all"] = True
        if kind == "GIF":
            # No more frames than counted, whatever the decoder finds.
            sequence = itertools.islice(ImageSequence.Iterator(image), frames)
            gif = [gif_frame(frame) for frame in sequence]
            image, options["append_images"] = gif[0], gif[1:]
    else:
        # Photos carry their rotation in metadata that re-encoding drops: apply it.
        image = ImageOps.exif_transpose(image)
    if kind == "JPEG":
        image = image.convert("RGB")
    drop_metadata(image)
    out = io.BytesIO()
    image.save(out, format=kind, **options)
    return out.getvalue(), FORMATS[kind][0]


def gif_frame(frame):
    """A copy of one frame of a GIF, with a palette of its own.

    The decoder gives full-colour frames after the first; the encoder's default palette
    reduction is several times slower than the fast octree one used here.
    """
    if frame.mode in ("1", "L", "P"):
        frame = frame.copy()
    else:
        frame = frame.quantize(256, method=Image.Quantize.FASTOCTREE)
        # A transparent colour in the palette becomes the frame's transparent index.
        for color, index in frame.palette.colors.items():
            if frame.palette.mode == "RGBA" and color[3] == 0:
                frame.info["transparency"] = index
                break
    return frame


def drop_metadata(image):
    """Remove what an encoder would copy from the original image's info."""
    for key in METADATA_KEYS:
        image.info.pop(key, None)


def utc_text(moment):
    """A Unix time as the database's TIMESTAMP text, in UTC, to the second."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")


def dimensions(data):
    """Return encoded image bytes' (width, height) from their header; (None, None) if unreadable."""
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None, None


def new_image_name(extension):
    """A new name for an image: random, never the sender's file name, with our extension."""
    return f"{secrets.token_hex(16)}.{extension}"


def save_image(db, image):
    """Store a re-encoded image (bytes, extension) in the caller's transaction; return its name.

    The name is new and made here; None when there is no image. Written with the row that
    names it, the image exists exactly when that write commits.
    """
    if image is None:
        return None
    data, extension = image
    name = new_image_name(extension)
    db.execute(
        "INSERT INTO image (name, type, data, width, height) VALUES (?, ?, ?, ?, ?)",
        (name, MIMETYPES[extension], data, *dimensions(data)),
    )
    return name


def delete_image(db, name):
    """Delete a stored image in the caller's transaction (the one that stops naming it)."""
    if name:
        db.execute("DELETE FROM image WHERE name = ?", (name,))


def image_data(name):
    """Return a stored image's bytes, or None when there is no such image."""
    row = get_db().execute("SELECT data FROM image WHERE name = ?", (name,)).fetchone()
    return None if row is None else bytes(row["data"])


def image_length(name):
    """Return a stored image's size in bytes, or None when there is no such image."""
    row = get_db().execute("SELECT length(data) FROM image WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]


def image_size(name):
    """Return a stored image's (width, height), or None when it is not known."""
    row = get_db().execute("SELECT width, height FROM image WHERE name = ?", (name,)).fetchone()
    return None if row is None or row["width"] is None else (row["width"], row["height"])


def send_image(name, data, mimetype, **options):
    """A response of image bytes, never sniffed and never run as a page."""
    response = send_file(
        io.BytesIO(data), mimetype=mimetype, download_name=name, conditional=True, **options
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response


@bp.route("/uploads/<name>")
def uploaded(name):
    """Serve a stored image with its own type; it never changes, so it is cached for a year."""
    row = None
    if NAME_PATTERN.fullmatch(name):
        row = (
            get_db()
            .execute("SELECT type, data, created FROM image WHERE name = ?", (name,))
            .fetchone()
        )
    if row is None:
        abort(404, "There is no such image.")
    # A name is never reused for other bytes: it is the image's version.
    response = send_image(
        name,
        bytes(row["data"]),
        row["type"],
        etag=name,
        last_modified=row["created"],
        max_age=31536000,
    )
    response.cache_control.immutable = True
    return response


def keep_pending(image, form):
    """Keep a new image (bytes, extension) of a form that was not saved, for this writer.

    form names the form (a post's id, 0 for a new post). Only the name is in the writer's
    session; the image waits in the database, whichever server gets the form next, at
    most PENDING_SECONDS. Each writer has at most one.
    """
    data, extension = image
    name = new_image_name(extension)
    now = time.time()
    previous = session.pop("pending_image", None)
    with transaction() as db:
        if previous:
            db.execute("DELETE FROM pending_image WHERE name = ?", (previous["name"],))
        sweep_pending(db, now)
        db.execute(
            "INSERT INTO pending_image (name, type, data, created) VALUES (?, ?, ?, ?)",
            (name, MIMETYPES[extension], data, utc_text(now)),
        )
    session["pending_image"] = {"name": name, "form": form, "time": now}
    return name


def pending_image(form):
    """Return the name of the image this writer chose in this form and has not saved, or None."""
    pending = session.get("pending_image")
    if not pending:
        return None
    if pending["form"] != form or time.time() - pending["time"] > PENDING_SECONDS:
        return None
    return pending["name"]


def read_pending(name):
    """Return a pending image as (bytes, extension), as read_image would; None if it is gone."""
    row = get_db().execute("SELECT data FROM pending_image WHERE name = ?", (name,)).fetchone()
    return None if row is None else (bytes(row["data"]), name.rsplit(".", 1)[1])


def drop_pending():
    """Forget the writer's pending image and delete it."""
    pending = session.pop("pending_image", None)
    if pending:
        with transaction() as db:
            db.execute("DELETE FROM pending_image WHERE name = ?", (pending["name"],))


def sweep_pending(db, now):
    """Delete pending images older than PENDING_SECONDS (their writers left)."""
    db.execute("DELETE FROM pending_image WHERE created < ?", (utc_text(now - PENDING_SECONDS),))


@bp.route("/uploads/pending/<name>")
def pending(name):
    """Serve a pending image to the writer who chose it, and to no one else."""
    pending = session.get("pending_image")
    row = None
    if pending and pending["name"] == name:
        row = (
            get_db()
            .execute("SELECT type, data FROM pending_image WHERE name = ?", (name,))
            .fetchone()
        )
    if row is None:
        abort(404, "There is no such image.")
    response = send_image(name, bytes(row["data"]), row["type"])
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


# --- moving a site's image files into the database (init-db) ---------------------------

# Files moved per transaction: their bytes are held in memory until it commits.
MOVE_BATCH_BYTES = 32 * 1024 * 1024


def move_files_into_database():
    """Move the image files an older Flaskr kept in UPLOAD_FOLDER into the database.

    Only files a post or a profile names are moved; a name already stored is skipped (a
    second run, or one cut short after its commit). Files are removed only once their
    batch has committed. Returns lines that report what was moved and what was left.
    """
    folder = upload_folder()
    if not os.path.isdir(folder):
        return []
    db = get_db()
    named = {
        row[0]
        for row in db.execute(
            "SELECT image FROM post WHERE image IS NOT NULL"
            " UNION SELECT avatar FROM user WHERE avatar IS NOT NULL"
        )
    }
    files = sorted(
        name for name in os.listdir(folder) if name in named and NAME_PATTERN.fullmatch(name)
    )
    moved, size, batch, batch_bytes = 0, 0, [], 0
    for index, name in enumerate(files):
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        batch.append((name, data))
        batch_bytes += len(data)
        if batch_bytes < MOVE_BATCH_BYTES and index + 1 < len(files):
            continue
        with transaction() as db:
            for name, data in batch:
                stored = db.execute(
                    "INSERT INTO image (name, type, data, width, height)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING name",
                    (name, MIMETYPES[name.rsplit(".", 1)[1]], data, *dimensions(data)),
                ).fetchone()
                if stored is not None:
                    moved, size = moved + 1, size + len(data)
        for name, _ in batch:
            os.remove(os.path.join(folder, name))
        batch, batch_bytes = [], 0
    # What a form kept for its writer, never to be read again; then the folder, if empty.
    shutil.rmtree(os.path.join(folder, PENDING_FOLDER), ignore_errors=True)
    left = os.listdir(folder)
    if not left:
        os.rmdir(folder)
    lines = []
    if moved:
        lines.append(
            f"  moved {moved} images ({size / 1e6:.1f} MB) from {folder} into the database"
        )
    if left:
        lines.append(f"  left {len(left)} files that no post or profile names in {folder}")
    return lines
