"""Liveness heartbeat: the worker loop writes a small file; `check` says whether the worker is healthy.

`check` is the container health probe (`ai-worker check`); it reads one small file and imports nothing heavy.
Unhealthy when:
- the loop stopped writing the file (deadlocked, wedged in a call): its mtime is older than
  `settings.heartbeat_max_age_s`;
- the poller has not completed a receive for longer than it should (`receive_stalled_after_s`, written by the
  loop: two long polls' read timeouts and the pause between them) while it had free slots to fill: a connection
  that went silent without closing shows here instead of behind a healthy heartbeat.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ai_worker.config import Settings


def touch(path: str, status: dict[str, Any] | None = None) -> None:
    """Record that the loop is alive now (creating the file and its folder on first use), with `status`
    (`receive_ok_at`, `receive_stalled_after_s`) for `check`. Written atomically (rename)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"beat_at": time.time(), **(status or {})}))
    os.replace(tmp, file)


def check(settings: Settings, now: float | None = None) -> tuple[bool, str]:
    """(healthy, reason), from the heartbeat file's age and the receive status written in it."""
    now = time.time() if now is None else now
    path = settings.heartbeat_file
    try:
        mtime = os.stat(path).st_mtime
        text = Path(path).read_text()
    except FileNotFoundError:
        return False, f"no heartbeat file at {path} (worker not started?)"
    except OSError as exc:
        return False, f"cannot read heartbeat file {path}: {exc}"
    age = now - mtime
    if age > settings.heartbeat_max_age_s:
        return False, f"heartbeat is {age:.0f}s old (limit {settings.heartbeat_max_age_s:.0f}s)"
    try:
        status = json.loads(text) if text.strip() else {}
    except ValueError:
        status = {}
    ok_at, limit = status.get("receive_ok_at"), status.get("receive_stalled_after_s")
    if isinstance(ok_at, int | float) and isinstance(limit, int | float) and now - ok_at > limit:
        return False, f"no receive from SQS completed for {now - ok_at:.0f}s (limit {limit:.0f}s): connection stalled?"
    return True, f"heartbeat {age:.1f}s old"
