"""Decoding untrusted image bytes safely: byte and pixel caps are checked on the header, before decoding.

Shared by the OpenCV handlers. cv2 and PIL are imported lazily so importing this module costs nothing.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ai_worker.errors import INPUT_TOO_LARGE, INVALID_INPUT, PermanentError

if TYPE_CHECKING:
    import numpy as np

PDF_MAGIC = b"%PDF-"


def is_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(PDF_MAGIC)


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header only; PermanentError when it is not an image we can read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return int(img.width), int(img.height)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PermanentError(INVALID_INPUT, f"not a readable image (PNG/JPEG/TIFF/WebP/BMP): {exc}") from exc


def decode_image(data: bytes, *, max_pixels: int, grayscale: bool = False) -> np.ndarray:
    """Decode to a BGR (or grayscale) uint8 array, refusing images over `max_pixels` before decoding."""
    if not data:
        raise PermanentError(INVALID_INPUT, "input is empty")
    width, height = image_size(data)
    if width * height > max_pixels:
        raise PermanentError(
            INPUT_TOO_LARGE, f"image is {width}x{height} = {width * height} pixels, limit is {max_pixels}"
        )
    import cv2
    import numpy as np

    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if img is None:
        raise PermanentError(INVALID_INPUT, "image header is valid but the pixel data could not be decoded")
    return img
