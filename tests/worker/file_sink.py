"""A `ResultSink` on the local filesystem, for engine tests on the in-memory broker (job processes are separate
processes, so the sink must be shared through something they all see). `settings.results_bucket` is the root
folder. Write-once like the S3 sink: an exclusive, atomic create (a hard link), and "already there" when a
document exists."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ai_worker.config import Settings
from ai_worker.results import ResultRef, result_key


class FileResultSink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.results_bucket)

    def _path(self, tenant: str, job_id: str) -> Path:
        return self.root / result_key(self.settings, tenant, job_id)

    def exists(self, tenant: str, job_id: str) -> ResultRef | None:
        path = self._path(tenant, job_id)
        if not path.exists():
            return None
        status = json.loads(path.read_text()).get("status")
        return ResultRef(str(self.root), result_key(self.settings, tenant, job_id), created=False, status=status)

    def write(self, doc: dict[str, Any]) -> ResultRef:
        path = self._path(doc["tenant_id"], doc["job_id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        try:
            os.link(tmp, path)  # atomic and exclusive: readers never see a half-written document
        except FileExistsError:
            existing = self.exists(doc["tenant_id"], doc["job_id"])
            assert existing is not None
            return existing
        finally:
            tmp.unlink()
        return ResultRef(str(self.root), path.relative_to(self.root).as_posix(), created=True, status=doc["status"])


def file_sink(settings: Settings) -> FileResultSink:
    return FileResultSink(settings)


def read(settings: Settings, job_id: str, tenant: str = "academy-1") -> dict[str, Any] | None:
    path = Path(settings.results_bucket) / result_key(settings, tenant, job_id)
    return json.loads(path.read_text()) if path.exists() else None
