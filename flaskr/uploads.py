"""Images: validating and re-encoding uploads, storing them, and serving /uploads/<name>."""

import io
import itertools
import os
import re
import secrets
import struct
import time
from contextlib import contextmanager, suppress

from flask import Blueprint, abort, current_app, send_from_directory, session
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from .db import fault_cause
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
# its writer, in seconds; the folder, under the uploads, that holds those images.
PENDING_SECONDS = 60 * 60
PENDING_FOLDER = "pending"
# Decoding and encoding take a core and up to a few hundred MB each: two at once at most.
image_slots = Slots(2, "processing images")


class ImageError(FormError):
    """An uploaded file that is not an acceptable image; the message is for the user."""


def upload_folder():
    """Return the folder that holds uploaded images."""
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


def save_image(data, extension, folder=None):
    """Store re-encoded image bytes under a new server-made name and return the name.

    The bytes go to a hidden partial file first, renamed once complete, so a failed write
    (a full disk) never leaves a half image under a real name; the partial file is removed.
    """
    folder = folder or upload_folder()
    name = f"{secrets.token_hex(16)}.{extension}"
    tmp = os.path.join(folder, f".{name}.partial")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(folder, name))
    except BaseException:
        with suppress(OSError):
            os.remove(tmp)
        raise
    return name


def delete_image(name, folder=None):
    """Remove a stored image; a missing file is not an error.

    A storage fault (a read-only disk, an I/O error) is logged and the file left behind:
    the post's change is already committed, and an orphan file harms nobody.
    """
    if not (name and NAME_PATTERN.fullmatch(name)):
        return
    try:
        os.remove(os.path.join(folder or upload_folder(), name))
    except FileNotFoundError:
        pass
    except OSError as e:
        cause = fault_cause(e)
        if cause is None:
            raise
        current_app.logger.warning("storage fault: %s, so image %s stays (%s)", cause, name, e)


@bp.route("/uploads/<name>")
def uploaded(name):
    """Serve a stored image with its own type, never sniffed, never run as a page."""
    if not NAME_PATTERN.fullmatch(name):
        abort(404, "There is no such image.")
    response = send_from_directory(
        upload_folder(), name, mimetype=MIMETYPES[name.rsplit(".", 1)[1]], max_age=31536000
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.cache_control.immutable = True
    return response


def pending_folder():
    return os.path.join(upload_folder(), PENDING_FOLDER)


def keep_pending(image, form):
    """Keep a new image (bytes, extension) of a form that was not saved, for this writer.

    form names the form (a post's id, 0 for a new post). Only the name is in the writer's
    session; the file waits in the pending folder, at most PENDING_SECONDS.
    """
    drop_pending()
    sweep_pending()
    name = save_image(*image, folder=pending_folder())
    session["pending_image"] = {"name": name, "form": form, "time": time.time()}
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
    try:
        with open(os.path.join(pending_folder(), name), "rb") as f:
            return f.read(), name.rsplit(".", 1)[1]
    except FileNotFoundError:
        return None


def drop_pending():
    """Forget the writer's pending image and remove its file."""
    pending = session.pop("pending_image", None)
    if pending:
        delete_image(pending["name"], folder=pending_folder())


def sweep_pending():
    """Remove pending images older than PENDING_SECONDS (their writers left)."""
    cutoff = time.time() - PENDING_SECONDS
    with suppress(FileNotFoundError):
        for entry in os.scandir(pending_folder()):
            if entry.stat().st_mtime < cutoff:
                delete_image(entry.name, folder=pending_folder())


@bp.route("/uploads/pending/<name>")
def pending(name):
    """Serve a pending image to the writer who chose it, and to no one else."""
    pending = session.get("pending_image")
    if not (pending and pending["name"] == name and NAME_PATTERN.fullmatch(name)):
        abort(404, "There is no such image.")
    response = send_from_directory(
        pending_folder(), name, mimetype=MIMETYPES[name.rsplit(".", 1)[1]]
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


@contextmanager
def stored_image(image):
    """Store a new image (bytes, extension) for a write; remove it again if the write fails.

    Yields the new file's name, or None when there is no new image.
    """
    name = save_image(*image) if image else None
    try:
        yield name
    except BaseException:
        delete_image(name)
        raise


def image_size(name):
    """Return a stored image's (width, height), or None when it cannot be read."""
    try:
        with Image.open(os.path.join(upload_folder(), name)) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None
