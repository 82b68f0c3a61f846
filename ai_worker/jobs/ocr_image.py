"""Fitting an input image to Google Vision's documented limits before it is sent (and paid for).

Limits (cloud.google.com/vision/docs/supported-files and /limits): an image file of at most 20 MB, at most 75
megapixels, and a JSON request of at most 10 MB, in which inline content is base64 (4/3 larger). Text detection is
recommended at 1024x768 or more; `max_side` (AI_WORKER_OCR_MAX_SIDE) caps the longest side well above that.

Guarantees: an image already within the limits is sent byte for byte (no quality loss); anything else is
downscaled with the same factor on both axes and re-encoded as JPEG, keeping its EXIF block so the orientation
tag, and hence the frame of the returned coordinates, is unchanged. `scale` maps sent pixels back to input pixels.
PDFs and unreadable files are refused as `invalid_input`; decompression bombs as `input_too_large`, before decoding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final

from ai_worker.errors import INPUT_TOO_LARGE, INVALID_INPUT, PermanentError
from ai_worker.jobs.imaging import image_size, is_pdf

# 10 MB JSON request limit; base64 makes 7,000,000 bytes into 9,333,336 and leaves room for the rest of the body.
MAX_SEND_BYTES: Final = 7_000_000
MAX_API_PIXELS: Final = 75_000_000  # Vision refuses larger images
SENDABLE_FORMATS: Final = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP", "ICO", "TIFF"})
JPEG_QUALITIES: Final = (90, 80, 70)  # below 70, JPEG artefacts start to eat thin strokes of handwriting
SHRINK_STEP: Final = 0.8  # when even quality 70 is too big, shrink by this factor and try again


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    width: int  # as sent
    height: int
    scale: float  # sent pixels per input pixel (1.0: sent unchanged)


def prepare_image(data: bytes, *, max_side: int, max_pixels: int) -> PreparedImage:
    """The bytes to send to Vision: the input itself when it fits, else a downscaled JPEG that does."""
    if not data:
        raise PermanentError(INVALID_INPUT, "input is empty")
    if is_pdf(data):
        raise PermanentError(INVALID_INPUT, "PDF input is not supported by the ocr job: send one image per page")
    width, height = image_size(data)
    if width * height > max_pixels:
        raise PermanentError(INPUT_TOO_LARGE, f"image is {width}x{height}, over the {max_pixels}-pixel limit")
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        fits = max(width, height) <= max_side and width * height <= MAX_API_PIXELS and len(data) <= MAX_SEND_BYTES
        if fits and img.format in SENDABLE_FORMATS:
            return PreparedImage(data, width, height, 1.0)
        exif = img.info.get("exif", b"")
        rgb = img.convert("L" if img.mode in ("1", "L", "LA", "I", "I;16") else "RGB")
    scale = min(1.0, max_side / max(width, height), (MAX_API_PIXELS / (width * height)) ** 0.5)
    while True:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = rgb if size == (width, height) else rgb.resize(size, Image.Resampling.LANCZOS)
        for quality in JPEG_QUALITIES:
            buf = io.BytesIO()
            resized.save(buf, "JPEG", quality=quality, exif=exif)
            if buf.tell() <= MAX_SEND_BYTES:
                return PreparedImage(buf.getvalue(), size[0], size[1], size[0] / width)
        scale *= SHRINK_STEP
