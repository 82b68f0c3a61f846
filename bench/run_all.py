"""Run every benchmark in bench/ in turn and print their figures (`pixi run bench`).

Each bench_*.py is a standalone script that prints its own figures; this runner only sequences them and reports
which failed. Usage: python bench/run_all.py [NAME ...]   e.g. `python bench/run_all.py omr noop`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in argv]
    failed: list[str] = []
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(script)])
        print(f"=== {script.name}: exit {code} in {time.monotonic() - started:.1f} s", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed or not scripts else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
