"""Input bytes -> grayscale page images, for the page-oriented vision jobs (segmentation, handwriting).

Images are decoded through `imaging.decode_image` (byte and pixel caps checked on the header first). PDF pages are
rendered one at a time with pypdfium2: the page count is capped and each page's pixel size at the requested dpi is
checked against `settings.vision.max_pixels` *before* rendering, so a job holds at most one rendered page at a time
and never renders something it would refuse. Payload selection (`pages`, `dpi`) is validated here; a bad value is a
permanent `invalid_input`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pypdfium2 as pdfium

from ai_worker.config import VisionSettings
from ai_worker.errors import INPUT_TOO_LARGE, INVALID_INPUT, PermanentError
from ai_worker.jobs.imaging import decode_image, is_pdf

PDF_POINTS_PER_INCH = 72.0  # PDF user-space unit
DEFAULT_DPI = 200  # enough for layout analysis; A4 is 1654x2339 px
MIN_DPI = 50


@dataclass(frozen=True)
class Page:
    """One page as an 8-bit grayscale array; `dpi` is None for image inputs (their resolution is unknown)."""

    index: int
    gray: np.ndarray
    dpi: int | None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.gray.shape[1]), int(self.gray.shape[0])


def int_field(payload: Mapping[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PermanentError(INVALID_INPUT, f"payload.{name} must be an integer between {lo} and {hi}, got {value!r}")
    return value


def _page_selection(payload: Mapping[str, Any], max_pages: int) -> list[int] | None:
    """The 0-based page indices asked for, or None for "all pages"."""
    pages = payload.get("pages")
    if pages is None:
        return None
    if (
        not isinstance(pages, list)
        or not pages
        or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in pages)
    ):
        raise PermanentError(INVALID_INPUT, f"payload.pages must be a non-empty list of 0-based indices: {pages!r}")
    if len(pages) > max_pages:
        raise PermanentError(INPUT_TOO_LARGE, f"payload.pages asks for {len(pages)} pages, limit is {max_pages}")
    return list(dict.fromkeys(pages))  # de-duplicated, in the order asked


def load_pages(data: bytes, payload: Mapping[str, Any], vision: VisionSettings) -> Iterator[Page]:
    """Yield the selected pages of an image (one page, index 0) or a PDF, validating payload `pages` and `dpi`."""
    selection = _page_selection(payload, vision.pdf_max_pages)
    if not is_pdf(data):
        if selection not in (None, [0]):
            raise PermanentError(INVALID_INPUT, f"an image has one page (index 0); payload.pages={selection!r}")
        yield Page(0, decode_image(data, max_pixels=vision.max_pixels, grayscale=True), None)
        return
    dpi = int_field(payload, "dpi", DEFAULT_DPI, MIN_DPI, vision.pdf_max_dpi)
    yield from _render_pdf(data, selection, dpi, vision)


def _render_pdf(data: bytes, selection: list[int] | None, dpi: int, vision: VisionSettings) -> Iterator[Page]:
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise PermanentError(INVALID_INPUT, f"not a readable PDF (corrupt or encrypted): {exc}") from exc
    try:
        count = len(pdf)
        if count == 0:
            raise PermanentError(INVALID_INPUT, "the PDF has no pages")
        if selection is None:
            if count > vision.pdf_max_pages:
                raise PermanentError(
                    INPUT_TOO_LARGE,
                    f"the PDF has {count} pages, limit is {vision.pdf_max_pages}; select some with payload.pages",
                )
            selection = list(range(count))
        missing = [i for i in selection if i >= count]
        if missing:
            raise PermanentError(INVALID_INPUT, f"payload.pages {missing} out of range: the PDF has {count} pages")
        scale = dpi / PDF_POINTS_PER_INCH
        for index in selection:
            page = pdf[index]
            try:
                width_pt, height_pt = page.get_size()
                pixels = round(width_pt * scale) * round(height_pt * scale)
                if pixels > vision.max_pixels:
                    raise PermanentError(
                        INPUT_TOO_LARGE,
                        f"page {index} at {dpi} dpi is {pixels} pixels, limit {vision.max_pixels}: lower payload.dpi",
                    )
                bitmap = page.render(scale=scale, grayscale=True)
                gray = np.array(bitmap.to_numpy(), dtype=np.uint8)  # copy: the bitmap's buffer is freed below
                bitmap.close()
            finally:
                page.close()
            yield Page(index, gray.reshape(gray.shape[0], gray.shape[1]), dpi)
    finally:
        pdf.close()
