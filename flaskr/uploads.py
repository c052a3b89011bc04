"""Images: validating and re-encoding uploads, storing them, and serving /uploads/<name>."""

import io
import os
import re
import secrets
from contextlib import contextmanager

from flask import Blueprint, abort, current_app, send_from_directory
from PIL import Image, ImageOps, UnidentifiedImageError

from .forms import FormError

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
        return reencode(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError("The image has too many pixels.") from e
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, ValueError) as e:
        # Unknown formats, truncated or corrupt data, and modes no encoder takes.
        raise ImageError(NOT_AN_IMAGE) from e


def reencode(data):
    """Decode image bytes and encode them again; raise Pillow's errors on bad data."""
    image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    # Refuse oversized images from their header, before decoding a single pixel.
    pixels = image.width * image.height * getattr(image, "n_frames", 1)
    if pixels > current_app.config["IMAGE_MAX_PIXELS"]:
        raise Image.DecompressionBombError(f"{pixels} pixels")
    image.load()
    return encode(image)


def encode(image):
    """Re-encode a decoded image in its own format, without metadata."""
    kind = image.format
    animated = getattr(image, "n_frames", 1) > 1
    if not animated:
        # Photos carry their rotation in metadata that re-encoding drops: apply it.
        image = ImageOps.exif_transpose(image)
    for key in METADATA_KEYS:
        image.info.pop(key, None)
    options = {}
    if kind == "JPEG":
        image = image.convert("RGB")
        options = {"quality": 88}
    elif animated:
        options = {"save_all": True}
    out = io.BytesIO()
    image.save(out, format=kind, **options)
    return out.getvalue(), FORMATS[kind][0]


def save_image(data, extension):
    """Store re-encoded image bytes under a new server-made name and return the name."""
    folder = upload_folder()
    os.makedirs(folder, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{extension}"
    tmp = os.path.join(folder, f".{name}.partial")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(folder, name))
    return name


def delete_image(name):
    """Remove a stored image; a missing file is not an error."""
    if name and NAME_PATTERN.fullmatch(name):
        try:
            os.remove(os.path.join(upload_folder(), name))
        except FileNotFoundError:
            pass


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
