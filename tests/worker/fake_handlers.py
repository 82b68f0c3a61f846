"""A fake handler registry, so the engine is tested without AI models.

Every job type maps to `handle`, which does what `payload["do"]` says. Side effects a test needs to observe from
outside the job process (how often a job ran, when) are appended as JSON lines to `payload["marker"]`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Any

from ai_worker.errors import PermanentError, TransientError
from ai_worker.jobs import JOB_TYPES
from ai_worker.jobs.context import JobContext

REGISTRY: dict[str, str] = {job_type: f"{__name__}:handle" for job_type in JOB_TYPES}


def mark(ctx: JobContext, **fields: Any) -> None:
    path = ctx.payload.get("marker")
    if path:
        line = {"job_id": ctx.job.job_id, "tier": ctx.job.tier, "pid": os.getpid(), "t": time.time(), **fields}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def runs(path: str) -> list[dict[str, Any]]:
    """The marker lines written so far (empty when the file does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def handle(ctx: JobContext) -> dict[str, Any]:
    do = ctx.payload.get("do", "echo")
    first_run = not runs(ctx.payload.get("marker", "")) if ctx.payload.get("marker") else True
    mark(ctx, do=do)
    if do == "echo":
        return {"echo": ctx.payload.get("value"), "pid": os.getpid(), "torch_loaded": "torch" in sys.modules}
    if do == "sleep":
        if first_run or not ctx.payload.get("only_first"):
            time.sleep(float(ctx.payload["seconds"]))
        return {"slept": ctx.payload["seconds"]}
    if do == "wait":  # holds its slot until the test creates the gate file (at most `seconds`)
        deadline = time.monotonic() + float(ctx.payload.get("seconds", 30))
        while not os.path.exists(ctx.payload["gate"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        return {"gated": os.path.exists(ctx.payload["gate"])}
    if do == "spawn":  # starts a long-lived child process (as a job starts ffmpeg), then outlives its time limit
        if first_run:
            import subprocess

            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            mark(ctx, child_pid=child.pid)
            time.sleep(60)
        return {"recovered": True}
    if do == "fail":
        raise PermanentError(ctx.payload.get("code", "invalid_input"), "the fake handler refuses this input")
    if do == "transient":
        raise TransientError("downstream_unavailable", "the fake downstream is down")
    if do == "bug":
        raise ValueError("a bug in the handler")
    if do == "crash":
        if first_run:
            os._exit(3)
        return {"recovered": True}
    if do == "hog":
        if first_run:
            hog = bytearray(int(ctx.payload["mb"]) * 1024 * 1024)
            hog[::4096] = b"x" * len(hog[::4096])  # touch every page so it is resident
            time.sleep(30)
        return {"recovered": True}
    if do == "input":
        data = ctx.read_input()
        return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if do == "blob":
        ref = ctx.blobs.put(f"blobs/{ctx.job.job_id}.bin", b"blob-bytes", "application/octet-stream")
        return {"ref": ref, "back": (ctx.blobs.get(ref["key"]) or b"").decode(), "missing": ctx.blobs.get("nope")}
    raise AssertionError(f"unknown fake behaviour {do!r}")


def handle_batch(ctxs: list[JobContext]) -> list[dict[str, Any] | Exception]:
    """The batch form (used for batchable job types such as `embedding`): each job's own result or error."""
    out: list[dict[str, Any] | Exception] = []
    for ctx in ctxs:
        mark(ctx, batch=len(ctxs))
        try:
            out.append(handle(ctx))
        except (PermanentError, TransientError) as exc:
            out.append(exc)
    return out
