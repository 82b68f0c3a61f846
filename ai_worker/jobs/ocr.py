"""The `ocr` job: text of a homework photo through Google Cloud Vision, cached, behind a circuit breaker.

Guarantees:
- The same image (with the same feature and language hints) is paid for once: results are cached in the results
  bucket at `ocr-cache/<sha256>.json`, and a cached result is returned even while the breaker is open.
- Images are sent within Vision's documented limits (ai_worker.jobs.ocr_image); bounding boxes come back in the
  pixel coordinates of the input image.
- Throttling, 5xx, deadlines and network failures raise `TransientError` (the worker retries with backoff; the
  client's own 10-minute retry loop is switched off so a job never sits in it). Authentication, permission and
  billing failures open the shared circuit breaker (ai_worker.jobs.breaker): this job and every OCR job after
  it, in any job process of the worker, fail fast and retryably with `ocr_provider_unavailable` without calling
  the API until the breaker's open period ends.
- Credentials: `AI_WORKER_GOOGLE_CREDENTIALS_JSON` (a service-account JSON secret) when set, else Google's standard
  chain (`GOOGLE_APPLICATION_CREDENTIALS`, workload identity, metadata server).
- This module never imports torch; google-cloud-vision is imported on the first job, and the client stays warm.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Final

from ai_worker.config import OcrSettings
from ai_worker.errors import INVALID_INPUT, PermanentError, TransientError
from ai_worker.jobs.breaker import Breaker
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.ocr_image import PreparedImage, prepare_image
from ai_worker.jobs.retry_after import retry_after_s

if TYPE_CHECKING:
    from google.cloud.vision import AnnotateImageResponse, ImageAnnotatorClient

FEATURES: Final[dict[str, str]] = {"document": "DOCUMENT_TEXT_DETECTION", "text": "TEXT_DETECTION"}
CACHE_PREFIX = "ocr-cache/"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
OCR_PROVIDER_ERROR = "ocr_provider_error"
# google.rpc.Code values a per-image error may carry.
_RPC_AUTH: Final = {7: "PERMISSION_DENIED", 16: "UNAUTHENTICATED"}
_RPC_TRANSIENT: Final = {
    4: "DEADLINE_EXCEEDED",
    8: "RESOURCE_EXHAUSTED",
    10: "ABORTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
}
# Symbol breaks that separate words or lines in Vision's document layout.
_BREAKS: Final = {1: " ", 2: " ", 3: "\n", 4: "-\n", 5: "\n"}  # SPACE, SURE_SPACE, EOL_SURE_SPACE, HYPHEN, LINE_BREAK

_CLIENTS: dict[tuple[str | None, str, float], ImageAnnotatorClient] = {}


class _AuthFailure(Exception):
    """The provider refused our identity or billing: the breaker must open."""


def handle(ctx: JobContext) -> dict[str, Any]:
    settings = ctx.settings.ocr
    feature, hints = _request_options(ctx.payload, settings)
    data = ctx.read_input()
    key = cache_key(data, feature, hints)
    cached = ctx.blobs.get(key)
    if cached is not None:
        ctx.log.info("ocr cache hit %s", key)
        return {**json.loads(cached), "cached": True}
    image = prepare_image(data, max_side=settings.max_side, max_pixels=ctx.settings.vision.max_pixels)
    breaker = Breaker("ocr", settings.breaker_file, settings.breaker_open_s, ctx.settings.metrics_namespace)
    breaker.admit()
    try:
        response = _annotate(settings, image, feature, hints)
    except _AuthFailure as exc:
        raise breaker.trip(str(exc)) from exc
    breaker.record_success()
    result = to_result(response, feature, image.scale)
    ctx.blobs.put(key, json.dumps(result, ensure_ascii=False).encode(), "application/json")
    return {**result, "cached": False}


def cache_key(data: bytes, feature: str, hints: tuple[str, ...]) -> str:
    """`ocr-cache/<sha256>.json`: the digest covers the image bytes and everything else that shapes the answer."""
    digest = hashlib.sha256(data)
    digest.update(f"\0{feature}\0{','.join(hints)}".encode())
    return f"{CACHE_PREFIX}{digest.hexdigest()}.json"


def _request_options(payload: dict[str, Any], settings: OcrSettings) -> tuple[str, tuple[str, ...]]:
    mode = payload.get("mode", "document")
    if mode not in FEATURES:
        raise PermanentError(INVALID_INPUT, f"mode must be one of {', '.join(FEATURES)}, got {mode!r}")
    hints = payload.get("language_hints", list(settings.language_hints))
    if not isinstance(hints, list) or not all(isinstance(h, str) and 0 < len(h) <= 16 for h in hints):
        raise PermanentError(INVALID_INPUT, "language_hints must be a list of language codes such as ['ko', 'en']")
    return FEATURES[mode], tuple(hints)


def _annotate(settings: OcrSettings, image: PreparedImage, feature: str, hints: tuple[str, ...]) -> Any:
    """One images:annotate call; provider failures become TransientError / PermanentError / _AuthFailure."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from google.cloud import vision
    from requests import RequestException

    request = vision.AnnotateImageRequest(
        image=vision.Image(content=image.data),
        features=[vision.Feature(type_=getattr(vision.Feature.Type, feature))],
        image_context=vision.ImageContext(language_hints=list(hints)),
    )
    try:
        client = _client(settings)
        # retry=None: retries belong to the worker (visibility backoff), not to a loop inside a job slot.
        batch = client.batch_annotate_images(requests=[request], retry=None, timeout=settings.timeout_s)
    except (gexc.Unauthorized, gexc.Forbidden, auth_exc.DefaultCredentialsError, auth_exc.MalformedError) as exc:
        raise _AuthFailure(f"{type(exc).__name__}: {exc}") from exc
    except auth_exc.RefreshError as exc:
        if not getattr(exc, "retryable", False):
            raise _AuthFailure(f"credentials refresh failed: {exc}") from exc
        raise TransientError(OCR_PROVIDER_ERROR, f"credentials refresh failed: {exc}") from exc
    except (gexc.TooManyRequests, gexc.ServerError, gexc.RetryError) as exc:
        raise TransientError(OCR_PROVIDER_ERROR, f"Vision API: {exc}", retry_after_s=retry_after_s(exc)) from exc
    except (RequestException, auth_exc.TransportError, TimeoutError) as exc:
        raise TransientError(OCR_PROVIDER_ERROR, f"Vision API unreachable: {exc}") from exc
    except gexc.BadRequest as exc:
        raise PermanentError(INVALID_INPUT, f"Vision API refused the image: {exc}") from exc
    except gexc.ClientError as exc:
        # 404/405/409...: an endpoint or deployment problem, not the input's; retry, then the DLQ keeps the job.
        raise TransientError(OCR_PROVIDER_ERROR, f"Vision API: {exc}") from exc
    response = batch.responses[0]
    _raise_for_image_error(response)
    return response


def _client(settings: OcrSettings) -> ImageAnnotatorClient:
    """A warm client per endpoint and credential source (REST: gRPC channels do not survive fork)."""
    secret_id = hashlib.sha256((settings.credentials_json or "").encode()).hexdigest()
    key = (settings.api_endpoint, secret_id, settings.timeout_s)
    if key not in _CLIENTS:
        from google.cloud import vision

        _CLIENTS[key] = vision.ImageAnnotatorClient(
            credentials=_credentials(settings),
            transport="rest",
            client_options={"api_endpoint": settings.api_endpoint} if settings.api_endpoint else None,
        )
    return _CLIENTS[key]


def _credentials(settings: OcrSettings) -> Any:
    """Service-account credentials from the JSON secret, or None to let the client use Google's default chain."""
    if not settings.credentials_json:
        return None
    from google.oauth2 import service_account

    try:
        info = json.loads(settings.credentials_json)
    except ValueError as exc:
        raise _AuthFailure(f"AI_WORKER_GOOGLE_CREDENTIALS_JSON is not JSON: {exc.__class__.__name__}") from exc
    return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)


def _raise_for_image_error(response: AnnotateImageResponse) -> None:
    code, message = int(response.error.code), str(response.error.message)
    if code == 0:
        return
    if code in _RPC_AUTH:
        raise _AuthFailure(f"{_RPC_AUTH[code]}: {message}")
    if code in _RPC_TRANSIENT:
        raise TransientError(OCR_PROVIDER_ERROR, f"Vision API {_RPC_TRANSIENT[code]}: {message}")
    raise PermanentError(INVALID_INPUT, f"Vision API rejected the image (code {code}): {message}")


def to_result(response: AnnotateImageResponse, feature: str, scale: float) -> dict[str, Any]:
    """`{text, confidence, blocks: [{text, bbox, confidence}], engine}`; bboxes are divided by `scale`."""
    annotation = response.full_text_annotation
    found = [(_block_text(block).strip(), block) for page in annotation.pages for block in page.blocks]
    blocks = [
        {
            "text": text,
            "bbox": _bbox(block.bounding_box.vertices, scale),
            "confidence": round(float(block.confidence), 4),
        }
        for text, block in found
    ]
    chars = sum(len(text) for text, _ in found)
    # Page-level confidence weighted by text length: a long confident paragraph outweighs a stray mark.
    confidence = round(sum(len(t) * float(b.confidence) for t, b in found) / chars, 4) if chars else None
    text = annotation.text or (response.text_annotations[0].description if response.text_annotations else "")
    return {"text": text, "confidence": confidence, "blocks": blocks, "engine": f"google-vision:{feature}"}


def _block_text(block: Any) -> str:
    parts: list[str] = []
    for paragraph in block.paragraphs:
        for word in paragraph.words:
            for symbol in word.symbols:
                parts.append(symbol.text + _BREAKS.get(int(symbol.property.detected_break.type_), ""))
    return "".join(parts)


def _bbox(vertices: Any, scale: float) -> list[int]:
    """[x_min, y_min, x_max, y_max] in input-image pixels (Vision omits zero coordinates: they read as 0)."""
    xs = [v.x for v in vertices] or [0]
    ys = [v.y for v in vertices] or [0]
    return [round(min(xs) / scale), round(min(ys) / scale), round(max(xs) / scale), round(max(ys) / scale)]
