"""Huge images are `input_too_large`, found from the header before anything is decoded, on every image path
(ocr, omr_grading, question_segmentation, handwriting) — never `internal_error` from PIL's decompression-bomb
guard."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import pytest

from ai_worker.errors import PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.imaging import decode_image, image_size


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, *, pixels: bool) -> bytes:
    """A 1-bit greyscale PNG: complete (all-black pixel data, compressed) or only its header."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    body = b""
    if pixels:
        row = b"\x00" * (1 + (width + 7) // 8)
        compressor = zlib.compressobj(1)
        body = _chunk(b"IDAT", b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush())
    return b"\x89PNG\r\n\x1a\n" + header + body + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def huge() -> dict[str, bytes]:
    return {
        "196 Mpx": png(14_000, 14_000, pixels=True),
        "400 Mpx": png(20_000, 20_000, pixels=True),
        "header 30000x30000": png(30_000, 30_000, pixels=False),
        "header 100 Mpx (under PIL's guard)": png(10_000, 10_000, pixels=False),
    }


def test_decoding_is_refused_from_the_header(huge: dict[str, bytes]) -> None:
    for name, data in huge.items():
        tracemalloc.start()
        with pytest.raises(PermanentError) as refused:
            decode_image(data, max_pixels=40_000_000)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert refused.value.code == "input_too_large", (name, refused.value)
        assert peak < 8 * 2**20, (name, peak)  # nothing was decoded
    assert image_size(png(640, 480, pixels=False)) == (640, 480)


@pytest.mark.parametrize(
    ("module", "job_type", "payload"),
    [
        ("ai_worker.jobs.ocr", "ocr", {}),
        ("ai_worker.jobs.omr.handler", "omr_grading", {"question_count": 10}),
        ("ai_worker.jobs.segmentation", "question_segmentation", {}),
        ("ai_worker.jobs.handwriting", "handwriting_analysis", {}),
    ],
)
def test_every_image_job_answers_input_too_large(
    huge: dict[str, bytes], module: str, job_type: str, payload: dict[str, object]
) -> None:
    import importlib

    handle = importlib.import_module(module).handle
    for name in ("400 Mpx", "header 30000x30000"):
        ctx = JobContext.for_test(job_type, payload=payload, data=huge[name])
        with pytest.raises(PermanentError) as refused:
            handle(ctx)
        assert refused.value.code == "input_too_large", (module, name, refused.value)
