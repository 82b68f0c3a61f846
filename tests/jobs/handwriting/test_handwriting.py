"""handwriting_analysis on generated homework sheets: presence, monotonic scores, calculations, regions, errors."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from hw_pages import korean_fonts, render_korean_sheet, render_sheet

from ai_worker.errors import INVALID_INPUT, PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.handwriting import handle

SEEDS = range(300, 310)
AMOUNTS = (0, 1, 2, 4, 8)  # handwritten lines on the same printed sheet


def run(data: bytes, payload: dict | None = None) -> dict:
    return handle(JobContext.for_test("handwriting_analysis", payload or {}, data))


@pytest.fixture(scope="module")
def scored() -> dict[tuple[int, str, int], dict]:
    """Results for every (seed, kind, amount); the blank sheet (amount 0) is the same for both kinds."""
    out: dict[tuple[int, str, int], dict] = {}
    for seed in SEEDS:
        for kind in ("prose", "calc"):
            for amount in AMOUNTS:
                if amount == 0 and kind == "calc":
                    out[seed, kind, 0] = out[seed, "prose", 0]
                    continue
                out[seed, kind, amount] = run(render_sheet(seed, amount, kind).encode())
    return out


def test_presence_is_right_on_at_least_98_percent(scored: dict[tuple[int, str, int], dict]) -> None:
    cases = [(key, r) for key, r in scored.items() if not (key[1] == "calc" and key[2] == 0)]
    right = sum(r["writing_present"] == (amount > 0) for (_, _, amount), r in cases)
    print(f"presence correct on {right}/{len(cases)} sheets")
    assert right / len(cases) >= 0.98
    blanks = [r for (_, kind, amount), r in cases if amount == 0]
    assert all(not r["writing_present"] and r["writing_score"] < 0.05 for r in blanks)


def test_writing_score_increases_with_the_amount_written(scored: dict[tuple[int, str, int], dict]) -> None:
    rises = pairs = 0
    for seed in SEEDS:
        for kind in ("prose", "calc"):
            scores = [scored[seed, kind, a]["writing_score"] for a in AMOUNTS]
            assert all(0.0 <= s <= 1.0 for s in scores)
            rises += sum(b > a for a, b in itertools.pairwise(scores))
            pairs += len(scores) - 1
            assert scores[-1] > scores[0] + 0.5  # eight lines written is far from a blank sheet
    print(f"writing score rose on {rises}/{pairs} steps of amount")
    assert rises == pairs


def test_calculations_score_higher_than_prose(scored: dict[tuple[int, str, int], dict]) -> None:
    for (_, _, _), r in scored.items():
        assert 0.0 <= r["calculation_score"] <= r["writing_score"] <= 1.0
    wins = [
        scored[seed, "calc", amount]["calculation_score"] > scored[seed, "prose", amount]["calculation_score"]
        for seed in SEEDS
        for amount in (4, 8)
    ]
    assert sum(wins) / len(wins) >= 0.9
    share = [scored[s, "calc", 8]["calculation_score"] / scored[s, "calc", 8]["writing_score"] for s in SEEDS]
    assert min(share) >= 0.6


def test_stroke_statistics_describe_the_writing(scored: dict[tuple[int, str, int], dict]) -> None:
    blank = scored[SEEDS[0], "prose", 0]
    full = scored[SEEDS[0], "prose", 8]
    assert full["handwriting_coverage"] > blank["handwriting_coverage"]
    assert full["ink_coverage"] > blank["ink_coverage"] > 0
    assert 1.0 <= full["stroke_width_px"] <= 6.0
    assert 0.5 < full["orientation_entropy"] <= 1.0
    assert full["handwritten_lines"] > blank["handwritten_lines"]
    assert full["handwriting_components"] > 0


def test_region_limits_the_measurement() -> None:
    sheet = render_sheet(5, 3, "prose")  # writing fills the answer spaces from the top
    h, w = sheet.image.shape
    top = run(sheet.encode(), {"bbox": [0, 0, w, h // 2]})
    bottom = run(sheet.encode(), {"bbox": [0, int(h * 0.7), w, h]})
    assert top["region"] == [0, 0, w, h // 2] and top["writing_present"]
    assert bottom["region"] == [0, int(h * 0.7), w, h] and not bottom["writing_present"]
    clipped = run(sheet.encode(), {"bbox": [-50, -50, w + 100, 400.5]})
    assert clipped["region"] == [0, 0, w, 401] and clipped["page_size"] == [w, h]


def test_paper_texture_alone_is_not_writing() -> None:
    rng = np.random.default_rng(7)
    grain = cv2.GaussianBlur(rng.normal(0, 12, (1754, 1240)).astype(np.float32), (0, 0), 2.0)
    paper = np.clip(225 + 3 * grain + np.linspace(-30, 20, 1240)[None, :], 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", paper)
    assert ok
    result = run(buf.tobytes())
    assert not result["writing_present"] and result["writing_score"] == 0.0


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"bbox": [0, 0, 10]}, "payload.bbox"),
        ({"bbox": "top"}, "payload.bbox"),
        ({"bbox": [100, 100, 105, 300]}, "less than 16x16"),
        ({"page": 2}, "one page"),
        ({"page": -1}, "payload.page"),
    ],
)
def test_bad_payloads_fail_with_a_reason(payload: dict, words: str) -> None:
    with pytest.raises(PermanentError) as info:
        run(render_sheet(1, 0).encode(), payload)
    assert info.value.code == INVALID_INPUT
    assert words in info.value.message


def test_corrupt_image_is_invalid_input() -> None:
    data = render_sheet(1, 1).encode()
    with pytest.raises(PermanentError) as info:
        run(data[: len(data) // 50])
    assert info.value.code == INVALID_INPUT


@pytest.mark.skipif(not korean_fonts(), reason="Korean print needs fonts-unfonts-core or fonts-baekmuk")
@pytest.mark.parametrize("seed", [1, 4])
def test_korean_print_is_not_writing_and_pen_on_it_is(seed: int) -> None:
    for amount in (0, 2):
        image = render_korean_sheet(seed, amount, "blue")
        ok, png = cv2.imencode(".png", image)
        assert ok
        result = run(png.tobytes())
        assert result["writing_present"] == (amount > 0), (amount, result)
        assert (result["writing_score"] == 0.0) == (amount == 0)


def test_heavy_scan_noise_alone_is_not_writing() -> None:
    rng = np.random.default_rng(3)
    page = np.full((1754, 1240), 236, np.float32) + rng.normal(0, 20, (1754, 1240))
    salt = rng.random(page.shape)
    page[salt < 0.01], page[salt > 0.99] = 20, 250
    ok, jpeg = cv2.imencode(".jpg", np.clip(page, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert ok
    result = run(jpeg.tobytes())
    assert result["is_page"] and not result["writing_present"] and result["noise_level"] > 5, result


@pytest.mark.skipif(not korean_fonts(), reason="Korean print needs fonts-unfonts-core or fonts-baekmuk")
def test_score_rises_with_grainy_pencil_breaking_into_pieces() -> None:
    # Grainy pencil breaks into many small pieces as more is written: they must neither shrink the text height every
    # length is measured in nor make the page look noisy (scan noise is everywhere, pencil only where it is written).
    scores = []
    for amount in (0, 2, 6, 14):
        ok, png = cv2.imencode(".png", render_korean_sheet(3, amount, "grainy"))
        assert ok
        scores.append(run(png.tobytes())["writing_score"])
    assert scores[0] == 0.0 and all(b > a for a, b in itertools.pairwise(scores)), scores
