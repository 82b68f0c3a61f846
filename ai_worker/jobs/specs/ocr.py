"""ocr: text of homework photos and PDF pages, by Google Vision."""

from __future__ import annotations

import io
import os

from ai_worker.config import OcrSettings, Settings
from ai_worker.jobs.spec import JobSpec, Sample, Unavailable

TEXT = "Homework 3: solve x + 2 = 5"


def sample(settings: Settings) -> Sample:
    configured = (
        settings.ocr.credentials_json or settings.ocr.api_endpoint or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    )
    if not configured:
        raise Unavailable(
            "Google Vision is not configured (GOOGLE_APPLICATION_CREDENTIALS or AI_WORKER_GOOGLE_CREDENTIALS_JSON)"
        )
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (900, 160), 255)
    ImageDraw.Draw(image).text((30, 50), TEXT, fill=0, font=ImageFont.load_default(size=40))
    png = io.BytesIO()
    image.save(png, format="PNG")
    return Sample(
        {},
        png.getvalue(),
        "homework.png",
        truth=repr(TEXT),
        summarize=lambda result: repr(str(result.get("text", "")).strip()),
    )


SPEC = JobSpec(
    name="ocr",
    handler="ai_worker.jobs.ocr:handle",
    tiers=("lite", "basic", "premium"),
    description="text of a homework photo or PDF pages (Google Vision)",
    settings=OcrSettings,
    sample=sample,
)
