"""question_segmentation on generated exam pages: accuracy, PDF input, validation errors and caps."""

from __future__ import annotations

import io
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image
from seg_pages import PAGE_H, PAGE_W, ExamPage, iou, render_exam_page

from ai_worker.config import Settings
from ai_worker.errors import INPUT_TOO_LARGE, INVALID_INPUT, PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.segmentation import handle

SEEDS = range(1000, 1006)  # 6 pages, about 40 questions (bench/bench_segmentation.py runs many more)
IOU_MIN = 0.85


def run(data: bytes, payload: dict | None = None, settings: Settings | None = None) -> dict:
    return handle(JobContext.for_test("question_segmentation", payload or {}, data, settings=settings))


def to_pdf(pages: list[ExamPage], dpi: int = 150) -> bytes:
    images = [Image.fromarray(p.image) for p in pages]
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return buf.getvalue()


def test_generated_pages_meet_iou_and_order_targets() -> None:
    matched = total = pages_exact = columns_right = numbers_right = 0
    for seed in SEEDS:
        page = render_exam_page(seed)
        data = page.encode(".jpg", 85) if seed % 2 else page.encode(".png")
        result = run(data)
        found = result["questions"]
        assert [q["index"] for q in found] == list(range(1, len(found) + 1))
        assert all(q["page_index"] == 0 for q in found)
        numbers_right += [q["number"] for q in found] == list(range(1, len(page.boxes) + 1))
        assert all(q["label"] == f"{q['number']}." for q in found)
        # Matching by position in the list checks the reading order as well as the boxes.
        ious = [iou(truth, found[i]["bbox"]) if i < len(found) else 0.0 for i, truth in enumerate(page.boxes)]
        matched += sum(v >= IOU_MIN for v in ious)
        total += len(page.boxes)
        pages_exact += len(found) == len(page.boxes) and min(ious) >= IOU_MIN
        columns_right += result["columns"] == page.columns
    print(f"questions IoU>={IOU_MIN}: {matched}/{total}; exact pages {pages_exact}/{len(SEEDS)}")
    assert matched / total >= 0.9
    assert pages_exact / len(SEEDS) >= 0.75
    assert columns_right / len(SEEDS) >= 0.9
    assert numbers_right / len(SEEDS) >= 0.75


@pytest.mark.parametrize(("scale", "seeds"), [(2.0, range(40, 41)), (0.8, range(40, 43))])
def test_any_resolution_works(scale: float, seeds: range) -> None:
    """300 dpi and 120 dpi renderings of the same pages give the same questions, scaled."""
    matched = total = 0
    for seed in seeds:
        page = render_exam_page(seed)
        resized = cv2.resize(page.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        ok, png = cv2.imencode(".png", resized)
        assert ok
        found = run(png.tobytes())["questions"]
        for i, truth in enumerate(page.boxes):
            scaled = [round(v * scale) for v in truth]
            matched += i < len(found) and iou(scaled, found[i]["bbox"]) >= IOU_MIN
        total += len(page.boxes)
    assert matched / total >= 0.6


@pytest.mark.parametrize("angle", [-2.5, 1.2])
def test_skew_is_measured_and_undone(angle: float) -> None:
    page = render_exam_page(12)
    rotation = cv2.getRotationMatrix2D((PAGE_W / 2, PAGE_H / 2), angle, 1.0)
    turned = cv2.warpAffine(page.image, rotation, (PAGE_W, PAGE_H), borderValue=int(np.median(page.image)))
    ok, png = cv2.imencode(".png", turned)
    assert ok
    result = run(png.tobytes())
    assert result["pages"][0]["skew_deg"] == pytest.approx(angle + result_skew_of(page), abs=0.1)
    assert len(result["questions"]) == len(page.boxes)


def result_skew_of(page: ExamPage) -> float:
    ok, png = cv2.imencode(".png", page.image)
    assert ok
    return float(run(png.tobytes())["pages"][0]["skew_deg"])


def test_two_column_page_reads_left_column_first() -> None:
    page = next(p for p in map(render_exam_page, range(200, 260)) if p.columns == 2 and len(p.boxes) >= 6)
    result = run(page.encode())
    xs = [q["bbox"][0] for q in result["questions"]]
    split = next(i for i, x in enumerate(xs) if x > PAGE_W // 2)
    assert all(x < PAGE_W // 2 for x in xs[:split]) and all(x > PAGE_W // 2 for x in xs[split:])
    left_ys = [q["bbox"][1] for q in result["questions"][:split]]
    assert left_ys == sorted(left_ys)
    assert result["columns"] == 2


def test_pdf_pages_are_rendered_at_the_requested_dpi() -> None:
    pages = [render_exam_page(s) for s in (7, 8)]
    result = run(to_pdf(pages), {"pages": [1], "dpi": 150, "first_number": 21})
    (info,) = result["pages"]
    assert abs(info.pop("width") - PAGE_W) <= 1 and abs(info.pop("height") - PAGE_H) <= 1  # pdfium rounds up
    assert abs(info.pop("skew_deg")) <= 2.0
    assert info == {"page_index": 1, "dpi": 150, "columns": pages[1].columns, "questions": len(pages[1].boxes)}
    assert [q["index"] for q in result["questions"]] == list(range(21, 21 + len(pages[1].boxes)))
    assert [q["number"] for q in result["questions"]] == list(range(1, 1 + len(pages[1].boxes)))  # as printed
    assert {q["page_index"] for q in result["questions"]} == {1}
    for truth, q in zip(pages[1].boxes, result["questions"], strict=True):
        assert iou(truth, q["bbox"]) >= IOU_MIN


def test_all_pdf_pages_number_on_across_pages() -> None:
    pages = [render_exam_page(s) for s in (3, 4)]
    result = run(to_pdf(pages), {"dpi": 120})
    assert [p["page_index"] for p in result["pages"]] == [0, 1]
    assert abs(result["pages"][0]["width"] - PAGE_W * 120 / 150) <= 1
    total = len(pages[0].boxes) + len(pages[1].boxes)
    found = result["questions"]
    assert [q["index"] for q in found] == list(range(1, len(found) + 1))
    assert [q["page_index"] for q in found] == sorted(q["page_index"] for q in found)
    assert {q["page_index"] for q in found} == {0, 1} and len(found) >= total // 2


@pytest.mark.parametrize(
    ("data", "payload", "code", "words"),
    [
        (b"", {}, INVALID_INPUT, "empty"),
        (b"\x89PNG\r\n\x1a\n not really", {}, INVALID_INPUT, "not a readable image"),
        (b"%PDF-1.4\n garbage", {}, INVALID_INPUT, "not a readable PDF"),
        (None, {"pages": [5]}, INVALID_INPUT, "out of range"),
        (None, {"pages": "all"}, INVALID_INPUT, "payload.pages"),
        (None, {"dpi": 1200}, INVALID_INPUT, "payload.dpi"),
        (None, {"pages": list(range(21))}, INPUT_TOO_LARGE, "limit is 20"),
    ],
)
def test_bad_inputs_fail_permanently_with_a_reason(data: bytes | None, payload: dict, code: str, words: str) -> None:
    if data is None:
        data = to_pdf([render_exam_page(1)])
    with pytest.raises(PermanentError) as info:
        run(data, payload)
    assert info.value.code == code
    assert words in info.value.message


def test_oversize_image_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, png = cv2.imencode(".png", np.full((2000, 1500), 255, np.uint8))
    assert ok

    def no_decode(*args: object) -> None:
        raise AssertionError("decoded an image over the pixel cap")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    settings = Settings()
    settings = replace(settings, vision=replace(settings.vision, max_pixels=2_000_000))
    with pytest.raises(PermanentError) as info:
        run(png.tobytes(), settings=settings)
    assert info.value.code == INPUT_TOO_LARGE


def test_oversize_pdf_page_is_refused_before_rendering() -> None:
    settings = Settings()
    settings = replace(settings, vision=replace(settings.vision, max_pixels=3_000_000))
    data = to_pdf([render_exam_page(1)])
    with pytest.raises(PermanentError) as info:
        run(data, {"dpi": 200}, settings)  # 1654x2339 = 3.9 Mpx
    assert info.value.code == INPUT_TOO_LARGE
    assert "lower payload.dpi" in info.value.message


def test_blank_page_has_no_questions() -> None:
    ok, png = cv2.imencode(".png", np.full((PAGE_H, PAGE_W), 240, np.uint8))
    assert ok
    result = run(png.tobytes())
    assert result["questions"] == [] and result["columns"] == 1
