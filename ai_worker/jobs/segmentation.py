"""question_segmentation: split exam pages (an image, or PDF pages) into question regions in reading order.

Result: `{method, columns, questions: [{number, label, bbox, column, page_index, index[, score]}], pages:
[{page_index, width, height, dpi, columns, skew_deg, questions[, reason]}][, reason]}`. A bbox is [x0, y0, x1, y1] in
pixels of the page as analysed (the image itself, or the PDF page rendered at `dpi`), x1/y1 exclusive; on a skewed
page, the tight box of the question's ink on the page as given. `number` and `label` are the printed question number
and label, read with the PP-OCR recogniser (null when nothing legible is there); `index` is the question's ordinal in
reading order across the selected pages, starting at `payload.first_number` (default 1).

The OpenCV layout analysis (`layout.py`) runs unless `AI_WORKER_SEGMENTATION_ONNX_MODEL` names a detector, which
then replaces it (`layout_onnx.py`). Pages are processed one at a time, so memory is one rendered page, its levelled
copy and their masks (a job process peaks at ~240 MiB on an A4 page at 300 dpi).
"""

from __future__ import annotations

from typing import Any

from ai_worker.jobs import layout, layout_onnx
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.pages import int_field, load_pages

MAX_FIRST_NUMBER = 100_000


def handle(ctx: JobContext) -> dict[str, Any]:
    vision = ctx.settings.vision
    index = int_field(ctx.payload, "first_number", 1, 0, MAX_FIRST_NUMBER)
    model = vision.segmentation_onnx_model
    questions: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    for page in load_pages(ctx.read_input(), ctx.payload, vision):
        reason: str | None = None
        if model:
            columns = layout_onnx.detect(page.gray, model, vision.segmentation_onnx_min_score)
            found: list[dict[str, Any]] = [
                {"number": None, "label": None, "bbox": list(d.box), "column": c, "score": round(d.score, 4)}
                for c, column in enumerate(columns)
                for d in column
            ]
            column_count = len(columns)
            skew: float | None = None  # the detector sees the page as given
        else:
            analysed = layout.analyse(page.gray)
            found = [
                {"number": q.number, "label": q.label, "bbox": list(q.box), "column": q.column}
                for q in analysed.questions
            ]
            column_count = analysed.columns
            skew = analysed.skew_deg
            reason = analysed.reason
        for question in found:
            questions.append({**question, "page_index": page.index, "index": index})
            index += 1
        width, height = page.size
        pages.append(
            {
                "page_index": page.index,
                "width": width,
                "height": height,
                "dpi": page.dpi,
                "columns": column_count,
                "skew_deg": skew,
                "questions": len(found),
                **({"reason": reason} if reason else {}),
            }
        )
        ctx.log.info("page %d: %d questions in %d column(s)", page.index, len(found), column_count)
    reasons = [p["reason"] for p in pages if "reason" in p]
    return {
        "method": "onnx" if model else "opencv+ppocr",
        **({"reason": reasons[0]} if reasons and not questions else {}),
        "columns": max(p["columns"] for p in pages),
        "questions": questions,
        "pages": pages,
    }
