"""Decoding untrusted image bytes safely: byte and pixel caps are checked on the header, before decoding.

Shared by the OpenCV handlers, with the ink-mask helpers the page jobs build on (`ink_mask`, `remove_specks`,
`join_marks`) and `weighted_median`. cv2 and PIL are imported lazily so importing this module costs nothing.
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
    """(width, height) from the header only; PermanentError when it is not an image we can read.

    PIL refuses to even open a header declaring more than 2 x `Image.MAX_IMAGE_PIXELS` (~179 Mpx) pixels, with
    a decompression-bomb error: that is an input too large, not a bug (`input_too_large`, never internal_error).
    Callers compare the size with their own pixel limit before decoding anything."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the caller's limit decides
            with Image.open(io.BytesIO(data)) as img:
                return int(img.width), int(img.height)
    except Image.DecompressionBombError as exc:
        raise PermanentError(INPUT_TOO_LARGE, f"image header declares too many pixels: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PermanentError(INVALID_INPUT, f"not a readable image (PNG/JPEG/TIFF/WebP/BMP): {exc}") from exc


def check_image_pixels(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) when the header declares at most `max_pixels` pixels; `input_too_large` otherwise."""
    width, height = image_size(data)
    if width * height > max_pixels:
        raise PermanentError(
            INPUT_TOO_LARGE, f"image is {width}x{height} = {width * height} pixels, limit is {max_pixels}"
        )
    return width, height


JPEG_MAGIC = b"\xff\xd8\xff"
REDUCTIONS = {2: (16, 17), 4: (32, 33), 8: (64, 65)}  # cv2.IMREAD_REDUCED_{GRAYSCALE,COLOR}_n


def decode_image(data: bytes, *, max_pixels: int, grayscale: bool = False, reduce: int = 1) -> np.ndarray:
    """Decode to a BGR (or grayscale) uint8 array, refusing images over `max_pixels` before decoding.

    `reduce` (2, 4 or 8) asks for a JPEG decoded at 1/reduce of its size, which libjpeg does in the DCT domain at
    a fraction of the cost of a full decode; other formats ignore it and decode at full size."""
    if not data:
        raise PermanentError(INVALID_INPUT, "input is empty")
    check_image_pixels(data, max_pixels)
    import cv2
    import numpy as np

    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    if reduce in REDUCTIONS and data[:3] == JPEG_MAGIC:
        flag = REDUCTIONS[reduce][0 if grayscale else 1]
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if img is None:
        raise PermanentError(INVALID_INPUT, "image header is valid but the pixel data could not be decoded")
    return img


INK_MIN_CONTRAST = 50  # grey levels below the local paper tone that count as ink: above scan noise and paper grain
_BACKGROUND_SHRINK = 4  # the paper tone is estimated at 1/4 size: it varies slowly and this is 16x cheaper


def ink_mask(gray: np.ndarray, min_contrast: int = INK_MIN_CONTRAST) -> np.ndarray:
    """A 0/1 uint8 mask of pixels at least `min_contrast` darker than the local paper tone.

    The paper tone is a grey closing (a max filter followed by a min filter) wide enough to erase pen strokes, so
    uneven lighting and tinted paper do not read as ink and faint paper texture stays below the contrast floor.
    """
    import cv2
    import numpy as np

    small = cv2.resize(
        gray,
        (max(1, gray.shape[1] // _BACKGROUND_SHRINK), max(1, gray.shape[0] // _BACKGROUND_SHRINK)),
        interpolation=cv2.INTER_AREA,
    )
    # Strokes up to ~1.5 % of the page width wide are erased from the background estimate.
    k = max(3, (max(small.shape) // 64) | 1)
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    paper = cv2.GaussianBlur(paper, (0, 0), k / 2)
    paper = cv2.resize(paper, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    contrast = cv2.subtract(paper, gray)
    return (contrast >= min_contrast).astype(np.uint8)


def remove_specks(mask: np.ndarray, min_area: int) -> np.ndarray:
    """`mask` without 8-connected components smaller than `min_area` pixels (scan dust, noise)."""
    import cv2
    import numpy as np

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # label 0 is the background
    return keep[labels].astype(np.uint8) if count > 1 else np.zeros_like(mask)


def join_marks(mask: np.ndarray, across: int, down: int = 1) -> np.ndarray:
    """`mask` with gaps narrower than `across` x `down` pixels closed (letters into words, words into lines).

    The image edge counts as blank: a mark near it is not stretched to it (OpenCV's default border would).
    """
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (across, down))
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at which the sorted `values`' cumulative weight reaches half the total (`weights` >= 0, not all 0)."""
    import numpy as np

    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    row = min(int(np.searchsorted(cumulative, cumulative[-1] / 2)), len(values) - 1)
    return float(values[order[row]])
