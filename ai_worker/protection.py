"""ECS task scale-in protection: a task that is running jobs is not chosen for termination by scale-in.

The worker calls `ScaleInProtection.update(busy)` on every loop turn; the ECS agent endpoint
(`$ECS_AGENT_URI/task-protection/v1/state`) is called only when the state changes, plus a renewal before a long
busy period outlives the protection's expiry. Outside ECS (`ECS_AGENT_URI` unset) it does nothing. Failures are
logged and never stop the worker: protection is an optimisation of scale-in, not a condition for doing work.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

EXPIRES_IN_MINUTES: Final = 60  # the agent accepts 1..2880; renewed while busy, so a crash frees the task soon
RENEW_AFTER_S: Final = 45 * 60  # renew with a quarter of the expiry to spare
REQUEST_TIMEOUT_S: Final = 2.0  # the agent is local; never let it stall the worker loop


class ScaleInProtection:
    """Tracks the protected state and tells the ECS agent about transitions."""

    def __init__(self, agent_uri: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        uri = os.environ.get("ECS_AGENT_URI") if agent_uri is None else agent_uri
        self.url = f"{uri.rstrip('/')}/task-protection/v1/state" if uri else None
        self.protected = False
        self._since = 0.0
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def update(self, busy: bool) -> None:
        """Protect while busy, unprotect when idle; call the agent only on a change or a due renewal."""
        if self.url is None:
            return
        due = busy and self.protected and self._clock() - self._since >= RENEW_AFTER_S
        if busy == self.protected and not due:
            return
        if self._put(busy):
            self.protected = busy
            self._since = self._clock()

    def _put(self, enabled: bool) -> bool:
        assert self.url is not None
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = EXPIRES_IN_MINUTES
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                answer = json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("scale-in protection update to %s failed: %s", enabled, exc)
            return False
        if isinstance(answer, dict) and answer.get("failure"):
            log.warning("ECS agent refused scale-in protection %s: %s", enabled, answer["failure"])
            return False
        log.info("scale-in protection %s", "enabled" if enabled else "disabled")
        return True
