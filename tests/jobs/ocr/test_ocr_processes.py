"""OCR in a fresh job process: configured from the environment, torch never imported, breaker shared via its file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from vision_fake import VisionFake, error_reply

from ai_worker.errors import TransientError

CHILD = """
import json, sys
from ai_worker.config import Settings
from ai_worker.errors import JobError
from ai_worker.jobs import REGISTRY, resolve
from ai_worker.jobs.context import JobContext

handler = resolve(REGISTRY["ocr"])
ctx = JobContext.for_test("ocr", {}, open(sys.argv[1], "rb").read(), settings=Settings.from_env(), tier="lite")
try:
    out = {"result": handler(ctx)}
except JobError as exc:
    out = {"error": exc.to_dict()}
out["heavy"] = sorted(m for m in ("torch", "sentence_transformers", "transformers", "openai") if m in sys.modules)
print(json.dumps(out))
"""


def run_child(image: bytes, tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    path = tmp_path / f"image-{len(list(tmp_path.iterdir()))}.png"
    path.write_bytes(image)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def child_env(vision: VisionFake, service_account_json: str, tmp_path: Path) -> dict[str, str]:
    return {
        "AI_WORKER_OCR_API_ENDPOINT": vision.endpoint,
        "AI_WORKER_GOOGLE_CREDENTIALS_JSON": service_account_json,
        "AI_WORKER_OCR_BREAKER_FILE": str(tmp_path / "breaker-ocr.json"),
    }


def test_ocr_job_process_never_imports_torch(
    vision: VisionFake, make_png: Any, tmp_path: Path, child_env: dict[str, str]
) -> None:
    out = run_child(make_png(), tmp_path, child_env)
    assert out["result"]["blocks"], out
    assert out["heavy"] == []
    assert len(vision.calls) == 1


def test_open_breaker_is_seen_by_another_job_process(
    run_ocr: Any, vision: VisionFake, make_png: Any, tmp_path: Path, child_env: dict[str, str]
) -> None:
    vision.replies.append(error_reply(403, "PERMISSION_DENIED", "billing disabled", "BILLING_DISABLED"))
    with pytest.raises(TransientError):
        run_ocr(make_png(seed=1))  # this process trips the breaker...
    out = run_child(make_png(seed=2), tmp_path, child_env)  # ...and a sibling job process fails fast
    assert out["error"]["code"] == "ocr_provider_unavailable"
    assert out["error"]["retryable"] is True
    assert len(vision.calls) == 1
