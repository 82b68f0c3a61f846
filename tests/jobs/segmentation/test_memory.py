"""Peak memory of the page jobs on an A4 page at 300 dpi stays under 1 GiB (measured in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LIMIT_BYTES = 1 << 30
SCRIPT = """
import io, json, sys
sys.path.insert(0, {folder!r})
from PIL import Image
from seg_pages import render_exam_page
from ai_worker.jobs.context import JobContext
from ai_worker.jobs import {module}

buf = io.BytesIO()
Image.fromarray(render_exam_page(5).image).save(buf, format="PDF", resolution=150)
result = {module}.handle(JobContext.for_test("job", {payload}, buf.getvalue()))
# VmHWM is this process's own peak; ru_maxrss would also count the parent's memory, kept across fork and exec
peak_kib = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
print(json.dumps({{"peak_kib": peak_kib, "result": result}}))
"""


@pytest.mark.parametrize(
    ("module", "payload"),
    [("segmentation", {"dpi": 300}), ("handwriting", {"dpi": 300})],
)
def test_a4_page_at_300_dpi_stays_under_1_gib(module: str, payload: dict) -> None:
    code = SCRIPT.format(folder=str(Path(__file__).parent), module=module, payload=payload)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    peak = report["peak_kib"] * 1024  # /proc reports KiB
    print(f"{module}: peak RSS {peak / 2**20:.0f} MiB on A4 at 300 dpi")
    assert peak < LIMIT_BYTES
    if module == "segmentation":
        assert report["result"]["pages"][0]["width"] in (2480, 2481)
        assert report["result"]["questions"]
    else:
        assert report["result"]["page_size"][0] in (2480, 2481)
