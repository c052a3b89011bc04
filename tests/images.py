"""Image files for upload tests, made on the fly."""

import io
import struct
import zlib

from PIL import Image


def image_bytes(kind="PNG", size=(40, 30), color=(200, 40, 40), **options):
    """Encode a small solid image in the given format."""
    mode = "RGBA" if kind in ("PNG", "WEBP") else "RGB"
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format=kind, **options)
    return out.getvalue()


def jpeg_with_location():
    """A JPEG carrying EXIF metadata: a camera model and a GPS block."""
    exif = Image.Exif()
    exif[0x0110] = "Secret Camera 3000"  # Model
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPSInfo
    return image_bytes("JPEG", exif=exif.tobytes())


def animated_gif(frames=3):
    out = io.BytesIO()
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", (20, 20), colors[k % 4]) for k in range(frames)]
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


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
