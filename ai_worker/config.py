"""Worker settings, declared here (and, for a job type that brings its own, in its `JobSpec.settings` section),
read from environment variables by `Settings.from_env`.

Every setting is one field below, with its type, its limits, its default (the production value, written once) and
its meaning; `docs/configuration.md` is generated from these fields and a test keeps it in step. The variable of a
field is its section's prefix plus the field name in capitals (`AI_WORKER_` + `job_timeout_s` ->
`AI_WORKER_JOB_TIMEOUT_S`) unless an `Env` marker names another one. The platform's existing names
(`AI_SQS_QUEUE_NAME_LITE|BASIC|PREMIUM`) are accepted as aliases; `AI_WORKER_TIER` (the cpu/gpu choice, now
`AI_WORKER_KIND`) still works with a deprecation warning. AWS itself (credentials, region, endpoints, retry mode)
is configured only through the SDK's own chain (`AWS_REGION`, `AWS_ENDPOINT_URL_SQS`, ...), never here.

The sections are frozen dataclasses: `Settings()` holds the defaults and reads nothing, and code (tests, the demo)
derives variants with `dataclasses.replace`. `Settings.from_env()` reads the environment with pydantic-settings
(`ai_worker.config_env`) and enforces each field's type and limits there: the limits are operating policy for
deployed values, not for code. A bad value raises `ConfigError` naming the variable, so a misconfigured task
fails at start, not mid-job. Job-specific settings live in their own section (`settings.ocr`, `settings.embedding`,
...).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from ai_worker.tiers import DEFAULT_POLL_WEIGHTS, TIERS, WorkerKind

if TYPE_CHECKING:
    # Only in annotations, which stay strings until `ai_worker.config_env` evaluates them: importing this module
    # (the health probe, every job process) does not import pydantic.
    from pydantic import BeforeValidator, Field
    from pydantic_settings import NoDecode

PREFIX = "AI_WORKER_"
S = TypeVar("S")


class ConfigError(ValueError):
    """A setting has a value the worker cannot use."""


@dataclasses.dataclass(frozen=True)
class Env:
    """Where a field is read from when that is not `<section prefix><FIELD NAME>`.

    `name`: the variable; `legacy`: older names accepted silently (the platform's own); `deprecated`: older names
    accepted with a warning. For a per-tier mapping, `{TIER}` in a name stands for each tier in capitals, and
    `every_tier` is one variable that sets all tiers at once (it wins over the per-tier ones).
    """

    name: str | None = None
    legacy: tuple[str, ...] = ()
    deprecated: tuple[str, ...] = ()
    every_tier: str | None = None


def _none_when(*words: str) -> BeforeValidator:
    """Accept a word (e.g. `none`, `auto`) as the variable's way of saying "no value"."""
    from pydantic import BeforeValidator

    return BeforeValidator(lambda v: None if isinstance(v, str) and v.strip().lower() in words else v)


def _comma_list(value: Any) -> Any:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value


def _folder_prefixes(value: Any) -> Any:
    """Comma-separated key prefixes, each ending in "/" (a prefix names a folder, never part of a name)."""
    items = _comma_list(value)
    return tuple(p if p.endswith("/") else p + "/" for p in items) if isinstance(items, tuple) else items


@dataclass(frozen=True)
class InputSettings:
    """Fetching job inputs (presigned URLs and S3 keys)."""

    ENV_PREFIX: ClassVar[str] = "AI_WORKER_INPUT_"

    max_bytes: Annotated[int, Field(ge=1, description="Largest input downloaded, in bytes.")] = 50 * 1024 * 1024
    timeout_s: Annotated[float, Field(ge=0.1, description="Connect and read timeout of an input download.")] = 30.0
    allow_http: Annotated[bool, Field(description="Accept plain-http URLs (https only in production).")] = False
    allow_private: Annotated[
        bool, Field(description="Accept URLs resolving to loopback, private or link-local addresses.")
    ] = False
    bucket: Annotated[
        str | None, Field(description="Bucket of `payload.s3_key` inputs; the results bucket when unset.")
    ] = None
    # --- tenant isolation (engine) ---
    shared_prefixes: Annotated[
        tuple[str, ...],
        NoDecode,
        BeforeValidator(_folder_prefixes),
        Field(
            description="Comma-separated key prefixes every tenant's `s3_key` may use besides `inputs/<tenant>/` "
            "(e.g. `shared/samples/`); none by default."
        ),
    ] = ()


@dataclass(frozen=True)
class VisionSettings:
    """Image/video job limits shared by the OpenCV handlers."""

    ENV_PREFIX: ClassVar[str] = PREFIX

    max_pixels: Annotated[
        int, Field(ge=1, description="Largest image (pixels) decoded; ~A4 at 600 dpi. Larger inputs are refused.")
    ] = 40_000_000
    max_video_s: Annotated[
        float, Field(ge=1.0, description="Longest homework video analysed, in seconds."), Env("AI_WORKER_VIDEO_MAX_S")
    ] = 600.0
    video_fps: Annotated[float, Field(ge=0.1, description="Frames per second sampled from a video.")] = 4.0
    video_scale_width: Annotated[int, Field(ge=64, description="Width video frames are scaled to.")] = 1280
    segmentation_onnx_model: Annotated[
        str | None, Field(description="ONNX layout model for question segmentation; classical layout when unset.")
    ] = None
    segmentation_onnx_min_score: Annotated[
        float, Field(ge=0.0, description="Detections below this confidence are dropped before NMS.")
    ] = 0.5
    pdf_max_pages: Annotated[
        int, Field(ge=1, le=1000, description="PDF pages rendered per job; more must be chosen with payload.pages.")
    ] = 20
    pdf_max_dpi: Annotated[
        int, Field(ge=72, le=1200, description="Highest payload.dpi accepted for PDF rendering.")
    ] = 300
    omr_mark_fill: Annotated[
        float,
        Field(ge=0.05, le=0.95, description="OMR: filled fraction of a bubble from which it is a mark (about half)."),
    ] = 0.35


@dataclass(frozen=True)
class OcrSettings:
    """Google Vision OCR."""

    ENV_PREFIX: ClassVar[str] = "AI_WORKER_OCR_"

    breaker_open_s: Annotated[
        float, Field(ge=0.0, description="After an auth/billing failure, stop calling the paid API this long.")
    ] = 1800.0
    credentials_json: Annotated[
        str | None,
        Field(description="Service-account JSON (a secret); else the standard Google credential chain."),
        Env("AI_WORKER_GOOGLE_CREDENTIALS_JSON"),
    ] = None
    api_endpoint: Annotated[str | None, Field(description="Vision API endpoint (tests, private endpoints).")] = None
    language_hints: Annotated[
        tuple[str, ...], NoDecode, BeforeValidator(_comma_list), Field(description="Comma-separated language hints.")
    ] = ("ko", "en")
    timeout_s: Annotated[float, Field(ge=0.1, description="Timeout of one Vision request.")] = 30.0
    breaker_file: Annotated[
        str, Field(description="Circuit-breaker state, shared by the job processes of one worker.")
    ] = "/tmp/ai-worker-breaker-ocr.json"
    max_side: Annotated[
        int,
        Field(ge=640, le=8192, description="Longest side sent to Vision (3x its 1024x768 advice: legible A4)."),
    ] = 3072


@dataclass(frozen=True)
class EmbeddingSettings:
    """sentence-transformers embeddings; models load from a local path only."""

    ENV_PREFIX: ClassVar[str] = "AI_WORKER_EMBEDDING_"

    model: Annotated[
        str, Field(description="Local directory of the sentence-transformers model (never downloaded).")
    ] = "/opt/models/paraphrase-multilingual-MiniLM-L12-v2"
    device: Annotated[Literal["auto", "cpu", "cuda"], Field(description="Where the model runs.")] = "auto"
    batch_size: Annotated[int, Field(ge=1, description="Texts encoded per batch.")] = 64
    max_texts: Annotated[int, Field(ge=1, description="Most texts accepted in one job.")] = 2048
    max_chars: Annotated[int, Field(ge=1, description="Longest text accepted, in characters.")] = 8192
    inline_max_bytes: Annotated[
        int,
        Field(ge=0, description="Larger results go to S3 by reference (SQS/S3 documents stay small)."),
        Env("AI_WORKER_RESULT_INLINE_MAX_BYTES"),
    ] = 128 * 1024


@dataclass(frozen=True)
class LlmSettings:
    """OpenAI problem generation (API key and base URL come from OPENAI_API_KEY / OPENAI_BASE_URL)."""

    ENV_PREFIX: ClassVar[str] = "AI_WORKER_LLM_"

    model: Annotated[str, Field(description="OpenAI model."), Env("AI_WORKER_OPENAI_MODEL")] = "gpt-4o-mini"
    timeout_s: Annotated[
        float, Field(ge=0.1, description="Timeout of one OpenAI request."), Env("AI_WORKER_OPENAI_TIMEOUT_S")
    ] = 60.0
    max_output_tokens: Annotated[
        int, Field(ge=16, description="Output token limit of one request."), Env("AI_WORKER_OPENAI_MAX_OUTPUT_TOKENS")
    ] = 2048
    max_input_chars: Annotated[
        int, Field(ge=1, description="Longest input text; longer inputs are refused as invalid_input.")
    ] = 20_000
    max_retries: Annotated[
        int, Field(ge=0, le=10, description="429/5xx retries inside the handler, when the server asks briefly.")
    ] = 2
    inline_retry_max_s: Annotated[
        float, Field(ge=0.0, description="Longest server-asked pause waited in the handler; else back to the queue.")
    ] = 20.0
    breaker_open_s: Annotated[
        float, Field(ge=0.0, description="After an auth/billing failure, stop calling the paid API this long.")
    ] = 1800.0
    breaker_file: Annotated[
        str, Field(description="Circuit-breaker state, shared by the job processes of one worker.")
    ] = "/tmp/ai-worker-breaker-llm.json"


@dataclass(frozen=True)
class Settings:
    """Everything the worker reads from its environment. Build with `Settings.from_env()`."""

    ENV_PREFIX: ClassVar[str] = PREFIX

    backend: Annotated[
        Literal["auto", "aws", "local"],
        Field(description="`auto`: the embedded local SQS/S3 backend only when no AWS configuration is present."),
    ] = "auto"
    local_port: Annotated[
        int, Field(ge=0, le=65_535, description="Port of the embedded local backend on 127.0.0.1 (0: any free).")
    ] = 5055
    worker_kind: Annotated[
        WorkerKind,
        Field(description="`ai-worker run` without --kind: cpu polls basic+lite, gpu polls premium."),
        Env("AI_WORKER_KIND", deprecated=("AI_WORKER_TIER",)),
    ] = "cpu"
    queue_names: Annotated[
        dict[str, str],
        Field(description="SQS queue of each tier."),
        Env("AI_WORKER_QUEUE_{TIER}", legacy=("AI_SQS_QUEUE_NAME_{TIER}",), every_tier="AI_WORKER_QUEUE"),
    ] = field(default_factory=lambda: {str(t): f"academy-ai-jobs-{t}" for t in TIERS})
    dlq_suffix: Annotated[str, Field(description="A tier's DLQ is its queue's name plus this suffix.")] = "-dlq"
    results_bucket: Annotated[str, Field(description="S3 bucket of result documents and inputs.")] = (
        "academy-ai-results"
    )
    results_queue: Annotated[
        str | None, _none_when("none"), Field(description="Queue notified of each result; `none`: no notification.")
    ] = "academy-ai-results"
    results_prefix: Annotated[str, Field(description="Key prefix of result documents.")] = "results/"
    poll_weights: Annotated[
        dict[str, Annotated[int, Field(ge=1, le=100)]],
        Field(description="Relative poll weight of each tier (1-100): basic favoured, lite never starved."),
        Env("AI_WORKER_{TIER}_POLL_WEIGHT"),
    ] = field(default_factory=lambda: {str(t): w for t, w in DEFAULT_POLL_WEIGHTS.items()})
    slots: Annotated[
        Annotated[int, Field(ge=1, le=256)] | None,
        _none_when("auto"),
        Field(description="Job processes; `auto`: CPU count on cpu workers, one per GPU on gpu workers."),
    ] = None
    job_timeout_s: Annotated[float, Field(ge=1.0, description="Time limit of one job.")] = 900.0
    job_memory_mb: Annotated[int, Field(ge=64, description="Memory limit of one job process.")] = 4096
    visibility_timeout_s: Annotated[
        int, Field(ge=10, le=43_200, description="Lease granted per extension of a message's visibility.")
    ] = 120
    wait_time_s: Annotated[int, Field(ge=0, le=20, description="SQS long-polling wait.")] = 20
    drain_timeout_s: Annotated[
        float, Field(ge=0.0, description="Drain on SIGTERM, inside ECS's 120 s stopTimeout.")
    ] = 100.0
    retry_base_s: Annotated[float, Field(ge=1.0, description="First retry backoff; doubles with each receive.")] = 10.0
    retry_max_s: Annotated[float, Field(ge=1.0, description="Backoff cap (SQS allows up to 12 h).")] = 900.0
    heartbeat_file: Annotated[str, Field(description="File the worker loop touches; read by `ai-worker check`.")] = (
        "/tmp/ai-worker.heartbeat"
    )
    heartbeat_max_age_s: Annotated[
        float, Field(ge=1.0, description="`ai-worker check` fails when the heartbeat is older.")
    ] = 90.0
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], Field(description="Log level.")] = "INFO"
    metrics_namespace: Annotated[str, Field(description="CloudWatch (EMF) metrics namespace.")] = "AiWorker"
    allow_gpu_fallback: Annotated[bool, Field(description="Let a gpu worker start without a CUDA device.")] = False
    image: Annotated[str, Field(description="Image tag reported in result documents.")] = "dev"
    # --- engine throughput ---
    prefetch_max: Annotated[
        int,
        Field(
            ge=0,
            le=100,
            description="Messages held beyond the slots when jobs are short (sized from recent job times; "
            "raised to (slots + 1) x batch while a batchable job type runs; 0: receive only for free slots).",
        ),
    ] = 10
    result_check: Annotated[
        Literal["always", "redelivered"],
        Field(
            description="When a job process looks for the job's result before running it: `always` (every "
            "delivery: a job whose result exists never runs again) or `redelivered` (only from the second receive "
            "on: one S3 request less per job, but a `job_id` submitted again, or an SQS duplicate read as a first "
            "receive, runs again and its result is discarded; see docs/engine.md).",
        ),
    ] = "always"
    inputs: InputSettings = field(default_factory=InputSettings)
    vision: VisionSettings = field(default_factory=VisionSettings)
    ocr: OcrSettings = field(default_factory=OcrSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    # Sections declared by job types (`JobSpec.settings`) that are not a field above, by class; read with `section`.
    job_sections: Mapping[type, Any] = field(default_factory=dict, metadata={"from_env": False})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings `environ` (default: the process environment) asks for; `ConfigError` names a bad one."""
        from ai_worker.config_env import load

        return load(cls, os.environ if environ is None else environ)

    @classmethod
    def for_health_probe(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The defaults with the two settings `ai-worker check` reads. The probe runs every 30 s in every container,
        so it skips pydantic; the worker itself validated these values at start."""
        environ = os.environ if environ is None else environ
        defaults = cls()
        heartbeat_file = environ.get(PREFIX + "HEARTBEAT_FILE", "").strip() or defaults.heartbeat_file
        max_age = environ.get(PREFIX + "HEARTBEAT_MAX_AGE_S", "").strip()
        try:
            max_age_s = float(max_age) if max_age else defaults.heartbeat_max_age_s
        except ValueError:
            raise ConfigError(f"{PREFIX}HEARTBEAT_MAX_AGE_S={max_age!r}: not a number") from None
        return dataclasses.replace(defaults, heartbeat_file=heartbeat_file, heartbeat_max_age_s=max_age_s)

    def section(self, cls: type[S]) -> S:
        """The section of type `cls`: a field above, or one a job type declares (its defaults when not loaded)."""
        for name in (f.name for f in dataclasses.fields(self)):
            if type(value := getattr(self, name)) is cls:
                return value
        return self.job_sections.get(cls) or cls()

    def dlq_name(self, tier: str) -> str:
        return self.queue_names[tier] + self.dlq_suffix

    def describe(self) -> dict[str, Any]:
        """A loggable view (no secrets)."""
        return {
            "backend": self.backend,
            "queues": self.queue_names,
            "results_bucket": self.results_bucket,
            "results_queue": self.results_queue,
            "poll_weights": self.poll_weights,
            "slots": self.slots,
            "job_timeout_s": self.job_timeout_s,
            "job_memory_mb": self.job_memory_mb,
        }
