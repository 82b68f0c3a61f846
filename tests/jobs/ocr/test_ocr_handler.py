"""The ocr handler with the real google-cloud-vision client against a local Vision REST server."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from vision_fake import Reply, VisionFake, document_answer, error_reply

from ai_worker.errors import INVALID_INPUT, PermanentError, TransientError
from ai_worker.jobs import ocr

RunOcr = Callable[..., dict[str, Any]]


def test_success_sends_features_hints_and_original_bytes(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    image = make_png()
    result = run_ocr(image)

    assert result["text"] == "안녕하세요 학생\n2 + 3 = 5\n"
    assert [b["text"] for b in result["blocks"]] == ["안녕하세요 학생", "2 + 3 = 5"]
    assert result["blocks"][0]["bbox"] == [10, 20, 210, 60]
    assert result["blocks"][1]["bbox"] == [0, 0, 100, 40]  # omitted zero coordinates read as 0
    # confidence weights blocks by their text length: (8 * 0.98 + 9 * 0.80) / 17
    assert result["confidence"] == pytest.approx((8 * 0.98 + 9 * 0.80) / 17, abs=1e-4)
    assert result["engine"] == "google-vision:DOCUMENT_TEXT_DETECTION"
    assert result["cached"] is False
    request = vision.calls[0]["body"]["requests"][0]
    assert request["features"] == [{"type": 11}]  # DOCUMENT_TEXT_DETECTION, sent as an integer
    assert request["imageContext"]["languageHints"] == ["ko", "en"]
    assert vision.sent_image() == image  # within limits: sent byte for byte
    assert vision.calls[0]["authorization"].startswith("Bearer ")
    json.dumps(result)  # the result document must be JSON


def test_text_mode_and_hint_override(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    result = run_ocr(make_png(), {"mode": "text", "language_hints": ["en"]})
    request = vision.calls[0]["body"]["requests"][0]
    assert request["features"] == [{"type": 5}]  # TEXT_DETECTION
    assert request["imageContext"]["languageHints"] == ["en"]
    assert result["engine"] == "google-vision:TEXT_DETECTION"


def test_empty_text(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    vision.replies.append(Reply(200, document_answer([])))
    result = run_ocr(make_png())
    assert result == {
        "text": "",
        "confidence": None,
        "blocks": [],
        "engine": "google-vision:DOCUMENT_TEXT_DETECTION",
        "cached": False,
    }


def test_429_is_retryable_then_success(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    vision.replies.append(
        Reply(429, error_reply(429, "RESOURCE_EXHAUSTED", "Quota exceeded").body, {"Retry-After": "7"})
    )
    image = make_png()
    with pytest.raises(TransientError) as err:
        run_ocr(image)
    assert err.value.code == ocr.OCR_PROVIDER_ERROR
    assert err.value.retryable
    assert err.value.retry_after_s == 7.0
    # The worker redelivers later: the same image now succeeds, and nothing was cached from the failure.
    assert run_ocr(image)["text"].startswith("안녕하세요")
    assert len(vision.calls) == 2


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retryable(run_ocr: RunOcr, vision: VisionFake, make_png: Any, status: int) -> None:
    vision.replies.append(error_reply(status, "UNAVAILABLE", "backend error"))
    with pytest.raises(TransientError) as err:
        run_ocr(make_png())
    assert err.value.code == ocr.OCR_PROVIDER_ERROR
    assert len(vision.calls) == 1  # the client's own retry loop is off: one call per job attempt


def test_deadline_is_retryable(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    run_ocr(make_png(seed=1), timeout_s=0.5)  # warm client: time only the late call below
    vision.replies.append(Reply(200, document_answer([]), delay_s=3.0))
    started = time.monotonic()
    with pytest.raises(TransientError) as err:
        run_ocr(make_png(seed=2), timeout_s=0.5)
    assert err.value.code == ocr.OCR_PROVIDER_ERROR
    assert time.monotonic() - started < 2.5  # gave up at the deadline, did not wait for the answer


def test_bad_image_is_permanent(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    vision.replies.append(error_reply(400, "INVALID_ARGUMENT", "Bad image data."))
    with pytest.raises(PermanentError) as err:
        run_ocr(make_png())
    assert err.value.code == INVALID_INPUT


def test_per_image_error_inside_a_200(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    vision.replies.append(Reply(200, {"responses": [{"error": {"code": 3, "message": "Bad image data."}}]}))
    with pytest.raises(PermanentError, match="Bad image data"):
        run_ocr(make_png())
    vision.replies.append(Reply(200, {"responses": [{"error": {"code": 14, "message": "try later"}}]}))
    with pytest.raises(TransientError):
        run_ocr(make_png(seed=1))


def test_permission_denied_opens_breaker_and_stops_calls(
    run_ocr: RunOcr, vision: VisionFake, make_png: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ai_worker.jobs.breaker")
    vision.replies.append(
        error_reply(403, "PERMISSION_DENIED", "This API method requires billing.", "BILLING_DISABLED")
    )
    with pytest.raises(TransientError) as first:
        run_ocr(make_png(seed=1))
    assert first.value.code == "ocr_provider_unavailable"
    assert first.value.retryable
    assert first.value.retry_after_s == pytest.approx(1800.0)

    for seed in (2, 3):  # other images: no call reaches the API while the breaker is open
        with pytest.raises(TransientError) as later:
            run_ocr(make_png(seed=seed))
        assert later.value.code == "ocr_provider_unavailable"
        assert 0 < (later.value.retry_after_s or 0) <= 1800.0
    assert len(vision.calls) == 1

    metrics = [r.emf for r in caplog.records if hasattr(r, "emf")]  # CloudWatch embedded-metric documents
    assert [m for m in metrics if m.get("BreakerOpened") == 1 and m["Provider"] == "ocr"]
    assert len([m for m in metrics if m.get("BreakerRejected") == 1]) == 2
    assert metrics[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Provider"]]


def test_unauthenticated_opens_breaker(run_ocr: RunOcr, vision: VisionFake, make_png: Any, tmp_path: Path) -> None:
    # google-auth refreshes the token and retries on 401 (twice) before giving up: keep refusing.
    vision.replies.extend([error_reply(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")] * 3)
    with pytest.raises(TransientError, match="ocr_provider_unavailable"):
        run_ocr(make_png())
    assert len(vision.calls) == 3
    state = json.loads((tmp_path / "breaker-ocr.json").read_text())
    assert state["state"] == "open" and "Unauthorized" in state["reason"]


def test_breaker_probe_after_open_period(run_ocr: RunOcr, vision: VisionFake, make_png: Any, tmp_path: Path) -> None:
    vision.replies.append(error_reply(403, "PERMISSION_DENIED", "denied"))
    with pytest.raises(TransientError):
        run_ocr(make_png(seed=1), breaker_open_s=0.3)
    time.sleep(0.35)
    # The probe is denied again: the breaker re-opens without a second probe getting through.
    vision.replies.append(error_reply(403, "PERMISSION_DENIED", "still denied"))
    with pytest.raises(TransientError, match="ocr_provider_unavailable"):
        run_ocr(make_png(seed=2), breaker_open_s=0.3)
    assert len(vision.calls) == 2
    time.sleep(0.35)
    # Credentials fixed: the next probe succeeds and closes the breaker for everyone.
    assert run_ocr(make_png(seed=3), breaker_open_s=0.3)["blocks"]
    assert json.loads((tmp_path / "breaker-ocr.json").read_text()) == {}
    assert run_ocr(make_png(seed=4), breaker_open_s=0.3)["blocks"]
    assert len(vision.calls) == 4


def test_cache_hit_makes_no_call(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    image = make_png()
    first = run_ocr(image)
    key = ocr.cache_key(image, "DOCUMENT_TEXT_DETECTION", ("ko", "en"))
    assert key.startswith("ocr-cache/") and key.endswith(".json") and len(key) == len("ocr-cache/.json") + 64
    assert key in run_ocr.blobs.objects  # type: ignore[attr-defined]
    second = run_ocr(image)
    assert len(vision.calls) == 1
    assert second["cached"] is True
    assert {k: v for k, v in second.items() if k != "cached"} == {k: v for k, v in first.items() if k != "cached"}
    # Another feature is another answer, hence another entry (and a call).
    run_ocr(image, {"mode": "text"})
    assert len(vision.calls) == 2


def test_cache_hit_served_while_breaker_open(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    image = make_png()
    run_ocr(image)
    vision.replies.append(error_reply(403, "PERMISSION_DENIED", "denied"))
    with pytest.raises(TransientError):
        run_ocr(make_png(seed=9))
    assert run_ocr(image)["cached"] is True
    assert len(vision.calls) == 2


def test_large_image_is_downscaled_and_boxes_mapped_back(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    from PIL import Image

    vision.text_blocks = [("far corner", (1536, 1152, 3072, 2304), 0.9)]  # in sent pixels: bottom-right quarter
    result = run_ocr(make_png(4000, 3000), max_side=3072)
    with Image.open(io.BytesIO(vision.sent_image())) as sent:
        assert sent.format == "JPEG"
        assert sent.size == (3072, 2304)
    assert result["blocks"][0]["bbox"] == [2000, 1500, 4000, 3000]  # back in input pixels


def test_credentials_from_the_standard_chain(
    run_ocr: RunOcr,
    vision: VisionFake,
    make_png: Any,
    service_account_json: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "sa.json"
    key_file.write_text(service_account_json)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    assert run_ocr(make_png(), credentials_json=None)["blocks"]
    assert vision.calls[0]["authorization"].startswith("Bearer ")


def test_unusable_secret_opens_breaker(run_ocr: RunOcr, vision: VisionFake, make_png: Any) -> None:
    with pytest.raises(TransientError, match="ocr_provider_unavailable"):
        run_ocr(make_png(), credentials_json="{not json")
    assert vision.calls == []


@pytest.mark.parametrize(
    ("payload", "data", "message"),
    [
        ({"mode": "handwriting"}, None, "mode must be one of"),
        ({"language_hints": "ko"}, None, "language_hints"),
        ({}, b"%PDF-1.7\n...", "PDF"),
        ({}, b"not an image", "not a readable image"),
    ],
)
def test_invalid_input(
    run_ocr: RunOcr, vision: VisionFake, make_png: Any, payload: dict[str, Any], data: bytes | None, message: str
) -> None:
    with pytest.raises(PermanentError, match=message) as err:
        run_ocr(data or make_png(), payload)
    assert err.value.code == INVALID_INPUT
    assert vision.calls == []
