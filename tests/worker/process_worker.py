"""Runs a cpu worker with the fake registry in its own process: `python -m worker.process_worker SETTINGS.pickle`.

Prints one JSON line at exit: whether torch was ever imported in this (the worker's) process. The exit code is
the worker's.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

from ai_worker.worker import run_worker

from .fake_handlers import REGISTRY


def main() -> int:
    settings = pickle.loads(Path(sys.argv[1]).read_bytes())
    code = run_worker(settings, "cpu", registry=REGISTRY)
    print(json.dumps({"torch_imported": "torch" in sys.modules}), flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
