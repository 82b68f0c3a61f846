"""Worker settings, read and validated from environment variables in this one module.

Every setting is `AI_WORKER_<NAME>`; each default is the production value. The platform's existing names
(`AI_SQS_QUEUE_NAME_LITE|BASIC|PREMIUM`) are accepted as aliases. AWS itself (credentials, region, endpoints,
retry mode) is configured only through the SDK's own chain (`AWS_REGION`, `AWS_ENDPOINT_URL_SQS`, ...), never here.

A bad value raises `ConfigError` naming the variable, so a misconfigured task fails at start, not mid-job.
Job-specific settings live in their own section (`settings.ocr`, `settings.embedding`, ...).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ai_worker.tiers import DEFAULT_POLL_WEIGHTS, TIERS

PREFIX = "AI_WORKER_"
T = TypeVar("T")


class ConfigError(ValueError):
    """A setting has a value the worker cannot use."""


class _Env:
    """Typed access to one environment mapping, remembering which variable each value came from."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def raw(self, name: str, *aliases: str) -> tuple[str, str] | None:
        for key in (PREFIX + name, *aliases):
            value = self.environ.get(key)
            if value is not None and value.strip() != "":
                return key, value.strip()
        return None

    def get(self, name: str, default: T, parse: Callable[[str], T], *aliases: str) -> T:
        found = self.raw(name, *aliases)
        if found is None:
            return default
        key, value = found
        try:
            return parse(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{key}={value!r}: {exc}") from exc

    def text(self, name: str, default: str, *aliases: str) -> str:
        return self.get(name, default, str, *aliases)

    def opt_text(self, name: str, *aliases: str) -> str | None:
        found = self.raw(name, *aliases)
        return found[1] if found else None

    def integer(self, name: str, default: int, *aliases: str, minimum: int = 0, maximum: int | None = None) -> int:
        def parse(v: str) -> int:
            n = int(v)
            if n < minimum or (maximum is not None and n > maximum):
                raise ValueError(f"must be between {minimum} and {maximum if maximum is not None else 'inf'}")
            return n

        return self.get(name, default, parse, *aliases)

    def number(self, name: str, default: float, *aliases: str, minimum: float = 0.0) -> float:
        def parse(v: str) -> float:
            x = float(v)
            if x < minimum:
                raise ValueError(f"must be >= {minimum}")
            return x

        return self.get(name, default, parse, *aliases)

    def flag(self, name: str, default: bool, *aliases: str) -> bool:
        def parse(v: str) -> bool:
            low = v.lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true/false")

        return self.get(name, default, parse, *aliases)

    def choice(self, name: str, default: str, choices: tuple[str, ...], *aliases: str) -> str:
        def parse(v: str) -> str:
            if v not in choices:
                raise ValueError(f"expected one of {', '.join(choices)}")
            return v

        return self.get(name, default, parse, *aliases)


@dataclass(frozen=True)
class InputSettings:
    """Fetching job inputs (presigned URLs and S3 keys)."""

    max_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 30.0
    allow_http: bool = False  # https only in production
    allow_private: bool = False  # loopback/private/link-local refused unless local development says otherwise
    bucket: str | None = None  # bucket for `payload.s3_key`; defaults to the results bucket

    @classmethod
    def from_env(cls, env: _Env) -> InputSettings:
        return cls(
            max_bytes=env.integer("INPUT_MAX_BYTES", cls.max_bytes, minimum=1),
            timeout_s=env.number("INPUT_TIMEOUT_S", cls.timeout_s, minimum=0.1),
            allow_http=env.flag("INPUT_ALLOW_HTTP", cls.allow_http),
            allow_private=env.flag("INPUT_ALLOW_PRIVATE", cls.allow_private),
            bucket=env.opt_text("INPUT_BUCKET"),
        )


@dataclass(frozen=True)
class VisionSettings:
    """Image/video job limits shared by the OpenCV handlers."""

    max_pixels: int = 40_000_000  # ~A4 at 600 dpi; refuse anything larger before decoding
    max_video_s: float = 600.0
    video_fps: float = 4.0
    video_scale_width: int = 1280
    segmentation_onnx_model: str | None = None
    segmentation_onnx_min_score: float = 0.5  # detections below this confidence are dropped before NMS
    pdf_max_pages: int = 20  # pages rendered per job; more must be selected with payload.pages
    pdf_max_dpi: int = 300  # highest payload.dpi accepted for PDF rendering (A4 at 300 dpi is 8.7 Mpx)

    @classmethod
    def from_env(cls, env: _Env) -> VisionSettings:
        return cls(
            max_pixels=env.integer("MAX_PIXELS", cls.max_pixels, minimum=1),
            max_video_s=env.number("VIDEO_MAX_S", cls.max_video_s, minimum=1.0),
            video_fps=env.number("VIDEO_FPS", cls.video_fps, minimum=0.1),
            video_scale_width=env.integer("VIDEO_SCALE_WIDTH", cls.video_scale_width, minimum=64),
            segmentation_onnx_model=env.opt_text("SEGMENTATION_ONNX_MODEL"),
            segmentation_onnx_min_score=env.number("SEGMENTATION_ONNX_MIN_SCORE", cls.segmentation_onnx_min_score),
            pdf_max_pages=env.integer("PDF_MAX_PAGES", cls.pdf_max_pages, minimum=1, maximum=1000),
            pdf_max_dpi=env.integer("PDF_MAX_DPI", cls.pdf_max_dpi, minimum=72, maximum=1200),
        )


@dataclass(frozen=True)
class OcrSettings:
    """Google Vision OCR."""

    breaker_open_s: float = 1800.0  # auth/billing failure: stop calling the paid API for 30 min
    credentials_json: str | None = None  # service-account JSON as a secret; else the standard Google chain
    api_endpoint: str | None = None  # for tests and private endpoints
    language_hints: tuple[str, ...] = ("ko", "en")
    timeout_s: float = 30.0
    # Shared by the job processes of one worker (they share its filesystem); see ai_worker.jobs.breaker.
    breaker_file: str = "/tmp/ai-worker-breaker-ocr.json"
    # Longest side sent to Vision: 3x its 1024x768 text recommendation keeps A4 handwriting legible (~260 dpi).
    max_side: int = 3072

    @classmethod
    def from_env(cls, env: _Env) -> OcrSettings:
        hints = env.opt_text("OCR_LANGUAGE_HINTS")
        return cls(
            breaker_open_s=env.number("OCR_BREAKER_OPEN_S", cls.breaker_open_s),
            credentials_json=env.opt_text("GOOGLE_CREDENTIALS_JSON"),
            api_endpoint=env.opt_text("OCR_API_ENDPOINT"),
            language_hints=tuple(h.strip() for h in hints.split(",") if h.strip()) if hints else cls.language_hints,
            timeout_s=env.number("OCR_TIMEOUT_S", cls.timeout_s, minimum=0.1),
            breaker_file=env.text("OCR_BREAKER_FILE", cls.breaker_file),
            max_side=env.integer("OCR_MAX_SIDE", cls.max_side, minimum=640, maximum=8192),
        )


@dataclass(frozen=True)
class EmbeddingSettings:
    """sentence-transformers embeddings; models load from a local path only."""

    model: str = "/opt/models/paraphrase-multilingual-MiniLM-L12-v2"
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int = 64
    max_texts: int = 2048
    max_chars: int = 8192
    inline_max_bytes: int = 128 * 1024  # larger results go to S3 by reference (SQS/S3 docs stay small)

    @classmethod
    def from_env(cls, env: _Env) -> EmbeddingSettings:
        return cls(
            model=env.text("EMBEDDING_MODEL", cls.model),
            device=env.choice("EMBEDDING_DEVICE", cls.device, ("auto", "cpu", "cuda")),
            batch_size=env.integer("EMBEDDING_BATCH_SIZE", cls.batch_size, minimum=1),
            max_texts=env.integer("EMBEDDING_MAX_TEXTS", cls.max_texts, minimum=1),
            max_chars=env.integer("EMBEDDING_MAX_CHARS", cls.max_chars, minimum=1),
            inline_max_bytes=env.integer("RESULT_INLINE_MAX_BYTES", cls.inline_max_bytes, minimum=0),
        )


@dataclass(frozen=True)
class LlmSettings:
    """OpenAI problem generation (API key and base URL come from OPENAI_API_KEY / OPENAI_BASE_URL)."""

    model: str = "gpt-4o-mini"
    timeout_s: float = 60.0
    max_output_tokens: int = 2048
    max_input_chars: int = 20_000  # OCR text of a few exam pages; longer inputs are refused as invalid_input
    # 429/5xx: wait in the handler only when the server asks for a short pause, else hand back to the queue.
    max_retries: int = 2
    inline_retry_max_s: float = 20.0
    breaker_open_s: float = 1800.0  # auth/billing failure: stop calling the paid API for 30 min
    breaker_file: str = "/tmp/ai-worker-breaker-llm.json"

    @classmethod
    def from_env(cls, env: _Env) -> LlmSettings:
        return cls(
            model=env.text("OPENAI_MODEL", cls.model),
            timeout_s=env.number("OPENAI_TIMEOUT_S", cls.timeout_s, minimum=0.1),
            max_output_tokens=env.integer("OPENAI_MAX_OUTPUT_TOKENS", cls.max_output_tokens, minimum=16),
            max_input_chars=env.integer("LLM_MAX_INPUT_CHARS", cls.max_input_chars, minimum=1),
            max_retries=env.integer("LLM_MAX_RETRIES", cls.max_retries, maximum=10),
            inline_retry_max_s=env.number("LLM_INLINE_RETRY_MAX_S", cls.inline_retry_max_s),
            breaker_open_s=env.number("LLM_BREAKER_OPEN_S", cls.breaker_open_s),
            breaker_file=env.text("LLM_BREAKER_FILE", cls.breaker_file),
        )


@dataclass(frozen=True)
class Settings:
    """Everything the worker reads from its environment. Build with `Settings.from_env()`."""

    backend: str = "auto"  # auto | aws | local: auto means local only when no AWS configuration is present
    local_port: int = 5055  # the embedded local backend listens on 127.0.0.1:<port> (0: any free port)
    worker_kind: str = "cpu"  # `ai-worker run` without --tier: cpu polls basic+lite, gpu polls premium
    queue_names: dict[str, str] = field(default_factory=lambda: {t: f"academy-ai-jobs-{t}" for t in TIERS})
    dlq_suffix: str = "-dlq"
    results_bucket: str = "academy-ai-results"
    results_queue: str | None = "academy-ai-results"
    results_prefix: str = "results/"
    poll_weights: dict[str, int] = field(default_factory=lambda: {str(k): v for k, v in DEFAULT_POLL_WEIGHTS.items()})
    slots: int | None = None  # None: CPU count on cpu workers, one per GPU on gpu workers
    job_timeout_s: float = 900.0
    job_memory_mb: int = 4096
    visibility_timeout_s: int = 120  # lease granted per extension
    wait_time_s: int = 20  # SQS long polling maximum
    drain_timeout_s: float = 100.0  # inside ECS's 120 s stopTimeout, leaving time to release and exit
    retry_base_s: float = 10.0  # first retry backoff; doubles with each receive
    retry_max_s: float = 900.0  # backoff cap (SQS allows up to 12 h of visibility)
    heartbeat_file: str = "/tmp/ai-worker.heartbeat"
    heartbeat_max_age_s: float = 90.0
    log_level: str = "INFO"
    metrics_namespace: str = "AiWorker"
    allow_gpu_fallback: bool = False
    image: str = "dev"
    inputs: InputSettings = field(default_factory=InputSettings)
    vision: VisionSettings = field(default_factory=VisionSettings)
    ocr: OcrSettings = field(default_factory=OcrSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        shared = env.opt_text("QUEUE")  # one queue for every tier
        queue_names: dict[str, str] = {
            tier: shared
            or env.text(f"QUEUE_{tier.upper()}", f"academy-ai-jobs-{tier}", f"AI_SQS_QUEUE_NAME_{tier.upper()}")
            for tier in TIERS
        }
        weights: dict[str, int] = {
            tier: env.integer(f"{tier.upper()}_POLL_WEIGHT", DEFAULT_POLL_WEIGHTS[tier], minimum=1, maximum=100)
            for tier in TIERS
        }
        results_queue = env.text("RESULTS_QUEUE", "academy-ai-results")
        slots_raw = env.opt_text("SLOTS")
        return cls(
            backend=env.choice("BACKEND", "auto", ("auto", "aws", "local")),
            local_port=env.integer("LOCAL_PORT", 5055, maximum=65_535),
            worker_kind=env.choice("TIER", "cpu", ("cpu", "gpu")),
            queue_names=queue_names,
            dlq_suffix=env.text("DLQ_SUFFIX", "-dlq"),
            results_bucket=env.text("RESULTS_BUCKET", "academy-ai-results"),
            results_queue=None if results_queue.lower() == "none" else results_queue,
            results_prefix=env.text("RESULTS_PREFIX", "results/"),
            poll_weights=weights,
            slots=None if slots_raw in (None, "auto") else env.integer("SLOTS", 1, minimum=1, maximum=256),
            job_timeout_s=env.number("JOB_TIMEOUT_S", 900.0, minimum=1.0),
            job_memory_mb=env.integer("JOB_MEMORY_MB", 4096, minimum=64),
            visibility_timeout_s=env.integer("VISIBILITY_TIMEOUT_S", 120, minimum=10, maximum=43_200),
            wait_time_s=env.integer("WAIT_TIME_S", 20, minimum=0, maximum=20),
            drain_timeout_s=env.number("DRAIN_TIMEOUT_S", 100.0),
            retry_base_s=env.number("RETRY_BASE_S", 10.0, minimum=1.0),
            retry_max_s=env.number("RETRY_MAX_S", 900.0, minimum=1.0),
            heartbeat_file=env.text("HEARTBEAT_FILE", "/tmp/ai-worker.heartbeat"),
            heartbeat_max_age_s=env.number("HEARTBEAT_MAX_AGE_S", 90.0, minimum=1.0),
            log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            metrics_namespace=env.text("METRICS_NAMESPACE", "AiWorker"),
            allow_gpu_fallback=env.flag("ALLOW_GPU_FALLBACK", False),
            image=env.text("IMAGE", "dev"),
            inputs=InputSettings.from_env(env),
            vision=VisionSettings.from_env(env),
            ocr=OcrSettings.from_env(env),
            embedding=EmbeddingSettings.from_env(env),
            llm=LlmSettings.from_env(env),
        )

    def dlq_name(self, tier: str) -> str:
        return self.queue_names[tier] + self.dlq_suffix

    @property
    def shared_queue(self) -> bool:
        return len(set(self.queue_names.values())) == 1

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
