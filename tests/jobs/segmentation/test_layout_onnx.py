"""The ONNX detector path: a tiny model built here whose outputs are known boxes and scores.

The graph multiplies the mean of its input by zero and adds constant boxes/scores, so it really consumes the page
tensor while its detections stay known: the test checks decoding to page pixels, the score threshold, NMS and the
reading order, end to end through the handler.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ai_worker.config import Settings
from ai_worker.errors import PermanentError
from ai_worker.jobs import layout_onnx
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.segmentation import handle

PAGE_W, PAGE_H = 800, 1000
# (normalised box, score); listed out of reading order on purpose
DETECTIONS = [
    ((0.55, 0.55, 0.95, 0.80), 0.70),  # right column, second
    ((0.05, 0.35, 0.45, 0.60), 0.80),  # left column, second
    ((0.06, 0.11, 0.45, 0.31), 0.60),  # duplicate of the first left box: suppressed by NMS
    ((0.55, 0.30, 0.95, 0.50), 0.30),  # under the score threshold: dropped
    ((0.55, 0.10, 0.95, 0.25), 0.95),  # right column, first
    ((0.05, 0.10, 0.45, 0.30), 0.90),  # left column, first
]
EXPECTED = [  # reading order, in page pixels
    ([40, 100, 360, 300], 0.90),
    ([40, 350, 360, 600], 0.80),
    ([440, 100, 760, 250], 0.95),
    ([440, 550, 760, 800], 0.70),
]


def build_model(path: Path, size: int | str = 64, channels: int = 3) -> Path:
    boxes = np.array([[b for b, _ in DETECTIONS]], np.float32)  # [1, N, 4]
    scores = np.array([[s for _, s in DETECTIONS]], np.float32)  # [1, N]
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["const_boxes", "nothing"], ["boxes"]),
        helper.make_node("Add", ["const_scores", "nothing"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_question_detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, channels, size, size])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, len(DETECTIONS), 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, len(DETECTIONS)]),
        ],
        initializer=[
            numpy_helper.from_array(boxes, "const_boxes"),
            numpy_helper.from_array(scores, "const_scores"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def page_png() -> bytes:
    page = np.full((PAGE_H, PAGE_W), 245, np.uint8)
    cv2.putText(page, "1. some question", (50, 150), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
    ok, buf = cv2.imencode(".png", page)
    assert ok
    return buf.tobytes()


def settings_for(model: Path) -> Settings:
    base = Settings()
    return replace(base, vision=replace(base.vision, segmentation_onnx_model=str(model)))


@pytest.mark.parametrize(("size", "channels"), [(64, 3), (32, 1), ("dynamic", 3)])
def test_detections_are_decoded_filtered_and_ordered(tmp_path: Path, size: int | str, channels: int) -> None:
    model = build_model(tmp_path / "det.onnx", size, channels)
    result = handle(JobContext.for_test("question_segmentation", {}, page_png(), settings=settings_for(model)))
    assert result["method"] == "onnx"
    assert result["columns"] == 2
    got = [(q["bbox"], q["score"]) for q in result["questions"]]
    assert [b for b, _ in got] == [b for b, _ in EXPECTED]
    assert [s for _, s in got] == pytest.approx([s for _, s in EXPECTED], abs=1e-4)
    assert [q["index"] for q in result["questions"]] == [1, 2, 3, 4]
    assert all(q["number"] is None for q in result["questions"])  # a detector locates, it does not read


def test_decode_suppresses_overlaps_keeping_the_best() -> None:
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.52], [0.6, 0.6, 0.9, 0.9]], np.float32)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    kept = layout_onnx.decode(boxes, scores, 100, 100, 0.5)
    assert [d.box for d in kept] == [(12, 10, 50, 52), (60, 60, 90, 90)]


def test_session_prefers_cuda_when_available(tmp_path: Path) -> None:
    model = build_model(tmp_path / "det.onnx")
    session = layout_onnx._session(str(model))
    import onnxruntime as ort

    expected = "CUDAExecutionProvider" if "CUDAExecutionProvider" in ort.get_available_providers() else "CPU"
    assert session.get_providers()[0].startswith(expected)
    assert layout_onnx._session(str(model)) is session  # cached while the file is unchanged


def test_missing_or_broken_model_is_reported(tmp_path: Path) -> None:
    for path in (tmp_path / "absent.onnx", tmp_path / "broken.onnx"):
        if path.name == "broken.onnx":
            path.write_bytes(b"not a model")
        with pytest.raises(PermanentError) as info:
            handle(JobContext.for_test("question_segmentation", {}, page_png(), settings=settings_for(path)))
        assert info.value.code == layout_onnx.MODEL_INVALID
