"""Fitting images to Vision's limits: unchanged when they fit, else a smaller JPEG in the same frame."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ai_worker.errors import INPUT_TOO_LARGE, PermanentError
from ai_worker.jobs.ocr_image import MAX_SEND_BYTES, prepare_image

EXIF_ORIENTATION = 0x0112


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def noise(width: int, height: int) -> Image.Image:
    """Incompressible pixels: the worst case for the byte limit."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_image_within_limits_is_sent_unchanged() -> None:
    data = encode(noise(800, 600), "JPEG", quality=85)
    prepared = prepare_image(data, max_side=3072, max_pixels=40_000_000)
    assert prepared.data == data
    assert (prepared.width, prepared.height, prepared.scale) == (800, 600, 1.0)


def test_too_many_bytes_is_reencoded_under_the_request_limit() -> None:
    data = encode(noise(2000, 1600), "PNG")  # ~9.6 MB of noise: over the 7 MB inline budget
    assert len(data) > MAX_SEND_BYTES
    prepared = prepare_image(data, max_side=3072, max_pixels=40_000_000)
    assert len(prepared.data) <= MAX_SEND_BYTES
    with Image.open(io.BytesIO(prepared.data)) as sent:
        assert sent.format == "JPEG"
        assert sent.size == (prepared.width, prepared.height)
    assert prepared.width / 2000 == pytest.approx(prepared.height / 1600, abs=1e-3)  # same factor on both axes


def test_long_side_is_capped_and_exif_orientation_kept() -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90 CW to display": a phone photo taken upright
    data = encode(Image.new("RGB", (4000, 1000), "white"), "JPEG", exif=exif)
    prepared = prepare_image(data, max_side=2000, max_pixels=40_000_000)
    assert (prepared.width, prepared.height) == (2000, 500)
    assert prepared.scale == pytest.approx(0.5)
    with Image.open(io.BytesIO(prepared.data)) as sent:
        assert sent.getexif()[EXIF_ORIENTATION] == 6


def test_grayscale_stays_grayscale() -> None:
    data = encode(Image.new("L", (3000, 100), 255), "PNG")
    prepared = prepare_image(data, max_side=1500, max_pixels=40_000_000)
    with Image.open(io.BytesIO(prepared.data)) as sent:
        assert sent.mode == "L"
        assert sent.size == (1500, 50)


def test_pixel_bomb_refused_before_decoding() -> None:
    data = encode(Image.new("1", (9000, 9000)), "PNG")  # tiny file, 81 megapixels
    with pytest.raises(PermanentError) as err:
        prepare_image(data, max_side=3072, max_pixels=40_000_000)
    assert err.value.code == INPUT_TOO_LARGE
