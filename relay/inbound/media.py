"""Attachments: strip metadata from images and give every file a neutral name.

A phone photo's EXIF can hold the GPS position of a shelter or of a survivor's home, the
phone's model and the time; its file name can hold a name or a date. We re-encode images from
their pixels alone (Pillow) and rename every file after its type.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, ImageOps, UnidentifiedImageError

from relay.messages import Attachment

log = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000  # refuse decompression bombs
_FORMATS = {
    "image/jpeg": ("JPEG", "jpg"),
    "image/png": ("PNG", "png"),
    "image/webp": ("WEBP", "webp"),
}
# Only what carries no hidden metadata travels as it is. Videos, audio and documents can hold
# the place they were made (a phone video's GPS) or an author's name, and we cannot strip
# them reliably: they are refused, and the sender is told why.
_OTHER_EXT = {"text/plain": "txt"}


class UnsupportedMedia(ValueError):  # noqa: N818 - reads as what happened
    """A file we will not relay (unknown type, unreadable or too large an image)."""


class UnsupportedType(UnsupportedMedia):
    """A kind of file we never relay (its metadata cannot be stripped)."""


def neutral_name(content_type: str, index: int = 1) -> str:
    """A file name that says only what the file is: ``photo-1.jpg``, ``file-2.pdf``."""
    if content_type in _FORMATS:
        return f"photo-{index}.{_FORMATS[content_type][1]}"
    ext = _OTHER_EXT.get(content_type, "bin")
    return f"file-{index}.{ext}"


def strip_image(data: bytes, content_type: str) -> bytes:
    """The image re-encoded from its pixels only (no EXIF, GPS, XMP, ICC or comments)."""
    fmt = _FORMATS[content_type][0]
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:
            # Pillow only refuses at twice MAX_IMAGE_PIXELS (below that it warns and decodes):
            # check the declared size before decoding a pixel.
            if img.width * img.height > MAX_PIXELS:
                raise UnsupportedMedia("image too large")
            img.load()
            # Apply the orientation tag before dropping it, so the photo stays upright.
            upright = ImageOps.exif_transpose(img) or img
            if upright.mode not in ("RGB", "RGBA", "L", "LA"):
                upright = upright.convert("RGBA")
            # A new image from raw pixels carries none of the original's info blocks.
            clean = Image.frombytes(upright.mode, upright.size, upright.tobytes())
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UnsupportedMedia("unreadable image") from exc
    out = io.BytesIO()
    if fmt == "JPEG" and clean.mode not in ("RGB", "L"):  # JPEG has no alpha
        clean = clean.convert("RGB")
    clean.save(out, format=fmt)
    return out.getvalue()


def sanitize(attachment: Attachment, index: int = 1) -> Attachment:
    """A copy safe to relay: metadata stripped where we can, and a neutral file name."""
    ctype = attachment.content_type.split(";")[0].strip().lower()
    if ctype in _FORMATS:
        data = strip_image(attachment.data, ctype)
    elif ctype in _OTHER_EXT:
        data = attachment.data
    else:
        raise UnsupportedType("type not relayed")
    return Attachment(content_type=ctype, data=data, filename=neutral_name(ctype, index))
