"""OCR fixtures: the Vision fake, a service-account secret whose token endpoint is that fake, and images."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from vision_fake import VisionFake

from ai_worker.config import OcrSettings, Settings
from ai_worker.jobs.context import JobContext, MemoryBlobStore


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def vision() -> Iterator[VisionFake]:
    fake = VisionFake()
    yield fake
    fake.close()


@pytest.fixture
def service_account_json(vision: VisionFake, private_key_pem: str) -> str:
    """A real service-account key; its token_uri is the fake, so the real OAuth JWT exchange runs locally."""
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "k1",
            "private_key": private_key_pem,
            "client_email": "ocr@test-project.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{vision.endpoint}/token",
        }
    )


@pytest.fixture
def ocr_settings(vision: VisionFake, service_account_json: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "api_endpoint": vision.endpoint,
            "credentials_json": service_account_json,
            "breaker_file": str(tmp_path / "breaker-ocr.json"),
            **overrides,
        }
        return Settings(ocr=OcrSettings(**fields))

    return make


@pytest.fixture
def run_ocr(ocr_settings: Callable[..., Settings]) -> Callable[..., dict[str, Any]]:
    """Run the handler on `image` with a blob store shared across calls of one test."""
    from ai_worker.jobs import ocr

    blobs = MemoryBlobStore()

    def run(image: bytes, payload: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        ctx = JobContext.for_test("ocr", payload or {}, image, settings=ocr_settings(**overrides), blobs=blobs)
        return ocr.handle(ctx)

    run.blobs = blobs  # type: ignore[attr-defined]
    return run


@pytest.fixture
def make_png() -> Callable[..., bytes]:
    def png(width: int = 320, height: int = 200, seed: int = 0) -> bytes:
        """A PNG with a line of text whose bytes differ by `seed` (so each is a different cache entry)."""
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (width, height), "white")
        ImageDraw.Draw(img).text((10 + seed % 50, 10), f"page {seed}", fill="black")
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    return png
