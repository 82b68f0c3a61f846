"""Liveness heartbeat: the worker loop touches a file; `check` says whether it did so recently.

`check` is the container health probe (`ai-worker check`); it reads one file's mtime and imports nothing heavy.
A loop stuck anywhere (deadlocked, wedged in a call) stops touching the file and the container is replaced.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ai_worker.config import Settings


def touch(path: str) -> None:
    """Record that the loop is alive now (creating the file and its folder on first use)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.touch()  # updates the mtime of an existing file


def check(settings: Settings, now: float | None = None) -> tuple[bool, str]:
    """(healthy, reason): healthy when the heartbeat file was touched within `settings.heartbeat_max_age_s`."""
    try:
        mtime = os.stat(settings.heartbeat_file).st_mtime
    except FileNotFoundError:
        return False, f"no heartbeat file at {settings.heartbeat_file} (worker not started?)"
    except OSError as exc:
        return False, f"cannot read heartbeat file {settings.heartbeat_file}: {exc}"
    age = (time.time() if now is None else now) - mtime
    if age > settings.heartbeat_max_age_s:
        return False, f"heartbeat is {age:.0f}s old (limit {settings.heartbeat_max_age_s:.0f}s)"
    return True, f"heartbeat {age:.1f}s old"
