"""handwriting_analysis on a few held-out pages (bench/heldout/handwriting_pages.py: real Debian fonts, Hershey
script and Nanum Pen handwriting, colour pens, highlighters, stamps, real photographs), never tuned on.

The full held-out evaluation is `bench/bench_handwriting.py`; these pages check the conventions end to end through
the handler (colour PNG in): Korean print is not writing, a single tick is, a highlighter swipe neither is writing
nor hides the writing under it, a photograph is not a page, and the score rises with the amount written.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench" / "heldout"))

import handwriting_pages as heldout

from ai_worker.jobs.context import JobContext
from ai_worker.jobs.handwriting import handle

pytestmark = pytest.mark.skipif(
    not heldout.fonts_available(), reason="held-out pages need fonts-nanum, fonts-noto-cjk and fonts-dejavu"
)
A4 = (1169, 1654)  # A4 at 141 dpi: smaller than the bench's 200 dpi pages, to keep the tests fast


def run(image: np.ndarray) -> dict:
    ok, png = cv2.imencode(".png", image)
    assert ok
    return handle(JobContext.for_test("handwriting_analysis", {}, png.tobytes()))


def test_korean_print_is_not_writing() -> None:
    rng = random.Random(11)
    page = heldout.scan(rng, heldout.lay_print(heldout.paper(rng, A4), heldout.typeset(rng, korean=True, size=A4)))
    result = run(page)
    assert result["is_page"] and not result["writing_present"] and result["writing_score"] == 0.0, result


def test_a_single_tick_is_writing() -> None:
    rng = random.Random(12)
    layout = heldout.typeset(rng, korean=True, size=A4)
    hand = heldout.Hand(rng, A4, 20, 2)
    x0, y0, x1, y1 = layout.answer_spaces[0]
    hand.tick((x0 + x1) / 2, (y0 + y1) / 2)
    page = heldout.ink(heldout.lay_print(heldout.paper(rng, A4), layout), hand.bent(), "blue", rng)
    result = run(heldout.scan(rng, page))
    assert result["writing_present"] and 0.0 < result["writing_score"] < 0.2, result


def test_highlighter_is_not_writing_and_hides_none() -> None:
    rng = random.Random(13)
    layout = heldout.typeset(rng, korean=False, size=A4)
    page = heldout.lay_print(heldout.paper(rng, A4), layout)
    swiped = run(heldout.scan(random.Random(1), heldout.highlight(rng, page, layout.answer_spaces)))
    assert not swiped["writing_present"], swiped
    wrng = random.Random(14)
    hand = heldout.Hand(wrng, A4, 20, 2)
    for item in heldout.write_items(wrng, layout, False, 6):
        item(hand)
    image = heldout.ink(page, hand.bent(), "black", wrng)
    plain = run(heldout.scan(random.Random(2), image))
    both = run(heldout.scan(random.Random(2), heldout.highlight(random.Random(3), image, layout.answer_spaces)))
    assert plain["writing_present"] and both["writing_present"]
    assert both["writing_score"] >= 0.7 * plain["writing_score"], (plain, both)


def test_a_photograph_is_not_a_page() -> None:
    photos = dict(heldout.photos())
    if "astronaut" not in photos:
        pytest.skip("scikit-image's astronaut photograph is not bundled")
    result = run(photos["astronaut"])
    assert not result["is_page"] and not result["writing_present"] and result["writing_score"] == 0.0


def test_score_rises_with_the_amount_written() -> None:
    srng = random.Random(15)
    layout = heldout.typeset(srng, korean=True, size=A4)
    sheet = heldout.lay_print(heldout.paper(srng, A4), layout)
    items = heldout.write_items(srng, layout, True, 10)
    scores = []
    for share in (0.0, 0.15, 0.45, 1.0):
        hand = heldout.Hand(random.Random(16), A4, 20, 2)
        for item in items[: round(share * len(items))]:
            item(hand)
        scores.append(run(heldout.scan(random.Random(17), heldout.ink(sheet, hand.bent(), "blue", random.Random(18)))))
    assert not scores[0]["writing_present"] and all(s["writing_present"] for s in scores[1:])
    values = [s["writing_score"] for s in scores]
    assert values == sorted(values) and len(set(values)) == 4 and all(0.0 <= v <= 1.0 for v in values), values
