"""Result documents: the key layout, the document's fields, and the conditional write that keeps the first
result when two deliveries of one job race."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_worker import __version__
from ai_worker.envelope import Envelope
from ai_worker.errors import TransientError
from ai_worker.results import S3BlobStore, S3ResultSink, build_document, read_result, result_key, s3_sink

from .harness import connect, make_settings


def test_first_result_stands_and_the_second_write_says_so(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(unique_prefix, tmp_path, image="ai-worker-cpu:1.2.3")
    s3 = connect(settings).s3
    s3.create_bucket(Bucket=settings.results_bucket)
    sink = S3ResultSink(settings, s3)
    env = Envelope(job_id="j-7", job_type="ocr", tier="lite", payload={"tenant_id": "academy-3"})
    first = build_document(env, status="done", kind="cpu", settings=settings, attempts=1, result={"text": "a"})
    second = build_document(env, status="done", kind="cpu", settings=settings, attempts=2, result={"text": "b"})

    assert sink.exists("academy-3", "j-7") is None
    ref = sink.write(first)
    assert ref.created and ref.key == result_key(settings, "academy-3", "j-7") == "results/academy-3/j-7.json"
    again = sink.write(second)
    assert not again.created and again.key == ref.key
    assert sink.exists("academy-3", "j-7") == again
    stored = read_result(s3, settings, "academy-3", "j-7")
    assert stored == first
    assert stored is not None and stored["result"] == {"text": "a"}
    assert stored["worker"] == {"version": __version__, "image": "ai-worker-cpu:1.2.3", "device": "cpu"}
    assert read_result(s3, settings, "academy-3", "nope") is None


def _calls(s3: object) -> list[str]:
    """The names of the S3 operations made through `s3` from now on."""
    made: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: made.append(model.name))  # type: ignore[attr-defined]
    return made


@pytest.mark.parametrize("status", ["done", "failed"])
def test_the_idempotency_check_is_one_head_that_reads_the_status_from_metadata(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path, status: str
) -> None:
    """A job process's first check is a GET (it shows the bucket exists: a HEAD's bare 404 could not); every
    later one is a HEAD, hit or miss: the status for the re-sent notice comes from the metadata the write sets."""
    settings = make_settings(unique_prefix, tmp_path)
    s3 = connect(settings).s3
    s3.create_bucket(Bucket=settings.results_bucket)
    sink = S3ResultSink(settings, s3)
    env = Envelope(job_id="j-1", job_type="ocr", tier="lite", tenant_id="academy-3")
    error = {"code": "input_not_found", "message": "gone", "retryable": False}
    doc = build_document(
        env,
        status=status,
        kind="cpu",
        settings=settings,
        attempts=1,
        result={},
        error=error,  # type: ignore[arg-type]
    )
    made = _calls(s3)
    assert sink.exists("academy-3", "j-0") is None
    assert sink.exists("academy-3", "j-1") is None
    assert made == ["GetObject", "HeadObject"]
    sink.write(doc)
    head = s3.head_object(Bucket=settings.results_bucket, Key=result_key(settings, "academy-3", "j-1"))
    assert head["Metadata"] == {"status": status}
    made.clear()
    ref = sink.exists("academy-3", "j-1")
    assert ref is not None and (ref.status, ref.created) == (status, False)
    assert made == ["HeadObject"]
    fresh = S3ResultSink(settings, s3)  # a new job process: its first check reads the document
    ref = fresh.exists("academy-3", "j-1")
    assert ref is not None and ref.status == status
    assert made == ["HeadObject", "GetObject"]


def test_a_document_without_the_status_metadata_is_read_for_its_status(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    """Documents written before the status went into metadata (or by hand) still give their status: the HEAD
    finds no metadata, so the body is read."""
    settings = make_settings(unique_prefix, tmp_path)
    s3 = connect(settings).s3
    s3.create_bucket(Bucket=settings.results_bucket)
    key = result_key(settings, "academy-3", "old")
    s3.put_object(Bucket=settings.results_bucket, Key=key, Body=b'{"job_id": "old", "status": "failed"}')
    sink = S3ResultSink(settings, s3)
    assert sink.exists("academy-3", "first") is None  # the bucket is seen
    made = _calls(s3)
    ref = sink.exists("academy-3", "old")
    assert ref is not None and (ref.key, ref.status, ref.created) == (key, "failed", False)
    assert made == ["HeadObject", "GetObject"]
    s3.put_object(Bucket=settings.results_bucket, Key=key, Body=b"not json")
    ref = sink.exists("academy-3", "old")
    assert ref is not None and ref.status is None  # still a result: the job is not run again


def test_a_missing_bucket_fails_the_check_instead_of_reading_as_no_result(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    """A misconfigured bucket is the store failing (transient: retried, then the DLQ), never "no result yet": a
    HEAD would read its 404 as a missing document and run a job whose result cannot be kept."""
    settings = make_settings(unique_prefix, tmp_path)
    sink = S3ResultSink(settings, connect(settings).s3)
    for _ in range(2):  # and it stays so: a failed check shows nothing about the bucket
        with pytest.raises(TransientError) as caught:
            sink.exists("academy-3", "j")
        assert caught.value.code == "result_write_failed"


def test_the_default_sink_sends_a_small_document_without_waiting_for_100_continue(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    """botocore sends every PutObject with `Expect: 100-continue` and waits for the server's answer before the
    body: a round trip per result. The default sink's client sends a document under 1 MiB at once, a larger one
    as botocore does; other clients are not changed."""
    settings = make_settings(unique_prefix, tmp_path)
    plain = connect(settings).s3
    plain.create_bucket(Bucket=settings.results_bucket)
    sink = s3_sink(settings)
    assert isinstance(sink, S3ResultSink)
    expects: dict[str, bool] = {}

    def record(request: object, **_: object) -> None:
        expects[request.url.rpartition("/")[2]] = "Expect" in request.headers  # type: ignore[attr-defined]

    for client in (sink.s3, plain):
        client.meta.events.register("before-send.s3.PutObject", record)
    docs = {}
    for job_id, text in (("small", "a"), ("large", "x" * (1 << 20))):
        env = Envelope(job_id=job_id, job_type="ocr", tier="lite", tenant_id="academy-3")
        docs[job_id] = build_document(env, status="done", kind="cpu", settings=settings, attempts=1, result={"t": text})
        assert sink.write(docs[job_id]).created
    plain.put_object(Bucket=settings.results_bucket, Key="results/academy-3/plain.json", Body=b"{}")
    assert expects == {"small.json": False, "large.json": True, "plain.json": True}
    for job_id, doc in docs.items():
        assert read_result(plain, settings, "academy-3", job_id) == doc
    assert not sink.write(docs["small"]).created  # the conditional write still refuses a second document


def test_failed_document_has_an_error_and_no_result(tmp_path: Path) -> None:
    settings = make_settings("r", tmp_path)
    env = Envelope(job_id="j", job_type="ocr", tier="lite", tenant_id="t")
    error = {"code": "input_not_found", "message": "gone", "retryable": False}
    doc = build_document(env, status="failed", kind="gpu", settings=settings, attempts=3, error=error, run_s=0.12345)
    assert doc["error"] == error and "result" not in doc
    assert doc["timings"] == {"queued_s": None, "run_s": 0.123}
    assert (doc["attempts"], doc["worker"]["device"], doc["tenant_id"]) == (3, "gpu", "t")


def test_blob_store_round_trip(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    settings = make_settings(unique_prefix, tmp_path)
    s3 = connect(settings).s3
    s3.create_bucket(Bucket=settings.results_bucket)
    blobs = S3BlobStore(s3, settings.results_bucket)
    ref = blobs.put("cache/x.bin", b"\x00\x01", "application/octet-stream")
    assert ref == {
        "bucket": settings.results_bucket,
        "key": "cache/x.bin",
        "s3_uri": f"s3://{settings.results_bucket}/cache/x.bin",
        "bytes": 2,
    }
    assert blobs.get("cache/x.bin") == b"\x00\x01"
    assert blobs.get("cache/missing.bin") is None


def test_blob_store_failures_are_transient(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    """An S3 problem (here: the bucket does not exist) is retried later, never a permanent job failure."""
    settings = make_settings(unique_prefix, tmp_path)
    blobs = S3BlobStore(connect(settings).s3, f"{unique_prefix}-no-such-bucket")
    with pytest.raises(TransientError) as put_error:
        blobs.put("cache/x.bin", b"x", "application/octet-stream")
    assert put_error.value.code == "blob_store_failed"
    with pytest.raises(TransientError):
        blobs.get("cache/x.bin")


@pytest.mark.parametrize(
    "result",
    [
        {"vectors": [[0.1, -2.5e-300, float("nan")]], "n": 3, "ok": True, "none": None, "s": "\u00e9"},
        {"nested": {"a": [{"b": [1, 2, {"c": "d"}]}]}},
        {"tuple": (1, 2)},  # not plain: encoded to find out, and JSON has lists for it
        {1: "an int key"},  # json.dumps turns it into "1"
    ],
)
def test_a_result_json_can_encode_is_accepted_as_is(result: dict[object, object]) -> None:
    from ai_worker.worker.child import _checked

    assert _checked(result) == result


def test_a_result_json_cannot_encode_is_refused() -> None:
    import numpy as np

    from ai_worker.errors import PermanentError
    from ai_worker.worker.child import _checked

    circular: dict[str, object] = {}
    circular["self"] = circular
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    for bad in ({"set": {1, 2}}, {"f32": [np.float32(0.5)]}, {"obj": object()}, circular, {"deep": deep}, [1]):
        with pytest.raises(PermanentError):
            _checked(bad)
