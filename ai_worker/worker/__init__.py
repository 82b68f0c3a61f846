"""The worker: polls the tier queues and runs each job in a supervised job process (see `engine`).

Importing this package is cheap (the health check imports `ai_worker.worker.heartbeat`); the engine, boto3 and
the job machinery load when `run_worker` is called.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING

from ai_worker.config import Settings
from ai_worker.tiers import WorkerKind

if TYPE_CHECKING:
    from ai_worker.aws import Clients
    from ai_worker.broker import Broker
    from ai_worker.worker.child import SinkFactory


def run_worker(
    settings: Settings,
    kind: WorkerKind,
    *,
    registry: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
    install_signal_handlers: bool = True,
    clients: Clients | None = None,
    sink_factory: SinkFactory | None = None,
    broker: Broker | None = None,
    batch_sizes: Mapping[str, int] | None = None,
) -> int:
    """Run a worker until `stop` is set or SIGTERM/SIGINT arrives; return the process exit code (0 after a
    clean drain).

    `kind` "cpu" polls basic and lite (weighted), "gpu" polls premium. `registry` maps job types to handler paths
    (default `ai_worker.jobs.REGISTRY`). `broker` (default: SQS through `clients`, themselves built from the SDK
    chain when not given) and `sink_factory` (default: S3 result documents) are for tools and tests. The queues
    and the results bucket must exist. `batch_sizes` (default: the `batch` of each job type's declaration) says
    which job types a job process may run several at a time.
    """
    from ai_worker import logs
    from ai_worker.jobs import REGISTRY
    from ai_worker.results import s3_sink
    from ai_worker.worker.engine import Engine

    logs.setup(settings.log_level)
    stop = stop or threading.Event()
    if broker is None:
        from ai_worker.aws import make_clients
        from ai_worker.broker.sqs import SqsBroker

        broker = SqsBroker.from_clients(clients or make_clients(settings))
    engine = Engine(
        settings, kind, REGISTRY if registry is None else registry, stop, broker, sink_factory or s3_sink, batch_sizes
    )
    if not (install_signal_handlers and threading.current_thread() is threading.main_thread()):
        return engine.run()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return engine.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
