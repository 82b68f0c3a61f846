"""`ai-worker omr sheet`: the printable sheet and its template JSON, read back by the job."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ai_worker.cli import main
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.omr import handle
from ai_worker.jobs.omr.sheet import Placement
from ai_worker.jobs.omr.template import Template

A4_POINTS = (595.3, 841.9)  # A4 in PDF points (1/72 inch)


@pytest.fixture(scope="module")
def sheet_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sheet")
    args = ["omr", "sheet", "--questions", "30", "--choices", "4", "--out", str(out), "--title", "Quiz", "--dpi", "150"]
    assert main(args) == 0
    return {kind: out / f"omr-sheet-30q-4c.{kind}" for kind in ("png", "pdf", "json")}


def test_writes_an_a4_png_and_pdf(sheet_files: dict[str, Path]) -> None:
    with Image.open(sheet_files["png"]) as png:
        assert png.size == (1240, 1754)  # A4 at 150 dpi
    pdf = sheet_files["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF-")
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert box is not None
    assert abs(float(box.group(1)) - A4_POINTS[0]) < 1 and abs(float(box.group(2)) - A4_POINTS[1]) < 1


def test_printed_sheet_filled_in_is_read_back_with_its_template(sheet_files: dict[str, Path]) -> None:
    template_json = json.loads(sheet_files["json"].read_text())
    template = Template.from_dict(template_json)
    assert len(template.questions) == 30 and template.choices == ("A", "B", "C", "D")
    # A student fills question k with choice k % 4 and the identifier 13579024, with a pen.
    with Image.open(sheet_files["png"]) as printed:
        page = printed.convert("L")
    place = Placement(template, 150)
    draw = ImageDraw.Draw(page)
    radius = place.length(template.bubble_radius) * 0.8
    targets = [q.bubbles[q.number % 4] for q in template.questions]
    targets += [column[int(d)] for column, d in zip(template.identifier, "13579024", strict=True)]
    for u, v in targets:
        x, y = place.point(u, v)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=30)
    path = sheet_files["png"].with_name("filled.jpg")
    page.save(path, quality=60)

    result = handle(JobContext.for_test("omr_grading", {"template": template_json}, path.read_bytes()))
    assert result["identifier"]["value"] == "13579024"
    assert [a["choice"] for a in result["answers"]] == ["ABCD"[k % 4] for k in range(1, 31)]


def test_sizes_the_sheet_cannot_hold_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["omr", "sheet", "--questions", "101", "--out", str(tmp_path)]) == 2
    assert "between 1 and 100" in capsys.readouterr().err
    assert main(["omr", "sheet", "--questions", "10", "--dpi", "1200", "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())


def test_importing_the_cli_and_package_loads_no_image_library() -> None:
    code = (
        "import sys, ai_worker.jobs.omr, ai_worker.jobs.omr.cli;"
        "heavy = {'cv2', 'PIL', 'numpy'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
