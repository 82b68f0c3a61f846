"""Where the test suite's CPU goes, and how its groups pack onto the workers.

    pytest -n 0 --cpu-profile=/tmp/prof          # or -n auto: each worker writes its own file
    python bench/suite_profile.py /tmp/prof      # tables: top tests, modules, groups, the packing on 2 and 3 workers
    python bench/suite_profile.py /tmp/prof --compare /tmp/prof-before
    python bench/suite_profile.py /tmp/prof --write-costs tests/suite_costs.json

The records come from tests/cpu_profile.py: CPU seconds (user + system) per test phase, the test process's own, its
reaped children's and its live descendants'. A module-scoped fixture is charged to the first test that uses it, so
modules (and the scheduler's groups, see tests/conftest.py) are the fair unit. The packing simulation runs the groups
in the scheduler's order on N workers, each group's CPU seconds as its duration, one core per worker: the makespan is
what the suite's CPU alone needs on N cores, and the idle share is the tail.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def load(folder: Path) -> tuple[dict[str, float], float]:
    """CPU seconds per test node id (setup + call + teardown), and the processes' own totals."""
    per_test: dict[str, float] = defaultdict(float)
    total = 0.0
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec["nodeid"] == "<process>":
                total += rec["cpu"]
            else:
                per_test[rec["nodeid"]] += rec["cpu"]
    return dict(per_test), total


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def by_module(per_test: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for nodeid, cpu in per_test.items():
        out[module_of(nodeid)] += cpu
    return dict(out)


def groups(per_test: dict[str, float]) -> dict[str, float]:
    """CPU per scheduling unit, as tests/conftest.py's scheduler forms them."""
    from conftest import group_of

    out: dict[str, float] = defaultdict(float)
    for nodeid, cpu in per_test.items():
        if not nodeid.startswith("<"):  # a process's start-up, collection, session end: no unit of work
            out[group_of(nodeid, ROOT)] += cpu
    return dict(out)


def pack(costs: list[float], workers: int) -> tuple[float, list[float]]:
    """List scheduling in the given order: each unit to the worker that is free first. Makespan and busy times."""
    heap = [(0.0, w) for w in range(workers)]
    busy = [0.0] * workers
    for cost in costs:
        free_at, w = heapq.heappop(heap)
        busy[w] += cost
        heapq.heappush(heap, (free_at + cost, w))
    return max(busy), busy


def table(rows: list[tuple[str, float]], total: float, limit: int, before: dict[str, float] | None = None) -> None:
    for name, cpu in rows[:limit]:
        was = f"{before.get(name, 0.0):8.1f}" if before is not None else ""
        print(f"  {cpu:8.1f} {was} {100 * cpu / total:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--compare", type=Path, help="an earlier profile: its figures beside these")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--write-costs", type=Path, help="write the groups' CPU seconds (for the scheduler's order)")
    args = parser.parse_args()

    per_test, process_total = load(args.folder)
    tests_total = sum(per_test.values())
    before = load(args.compare)[0] if args.compare else None
    head = "   CPU-s   before  share" if before is not None else "   CPU-s  share"
    print(f"{len(per_test)} tests; CPU charged to tests {tests_total:.1f} s; processes' total {process_total:.1f} s")
    if before is not None:
        print(f"before: CPU charged to tests {sum(before.values()):.1f} s")

    print(f"\nTop {args.top} tests (setup + call + teardown):\n{head}")
    table(sorted(per_test.items(), key=lambda kv: -kv[1]), tests_total, args.top, before)

    modules = by_module(per_test)
    print(f"\nModules ({len(modules)}):\n{head}")
    table(
        sorted(modules.items(), key=lambda kv: -kv[1]), tests_total, len(modules), by_module(before) if before else None
    )

    folders: dict[str, float] = defaultdict(float)
    for mod, cpu in modules.items():
        folders["/".join(mod.split("/")[:3]) if mod.startswith("tests/jobs/") else "/".join(mod.split("/")[:2])] += cpu
    print("\nFolders:\n   CPU-s  share")
    table(sorted(folders.items(), key=lambda kv: -kv[1]), tests_total, len(folders))

    from conftest import group_of, schedule_order

    units = groups(per_test)
    fixed = tests_total - sum(units.values())
    print(
        f"\nPacking ({len(units)} scheduling units, CPU seconds as durations; {fixed:.1f} s of start-up, collection"
        " and session ends not in it):"
    )
    # xdist's own order (--loadscope-reorder, its default): the units with the most tests first, collection order
    # among equals (the records are in the order the run wrote them).
    counts: dict[str, int] = defaultdict(int)
    for nodeid in per_test:
        if not nodeid.startswith("<"):
            counts[group_of(nodeid, ROOT)] += 1
    orders = {
        "cost order (tests/suite_costs.json)": schedule_order(list(units), ROOT),
        "xdist's order (test count)": sorted(units, key=lambda unit: -counts[unit]),
    }
    for label, order in orders.items():
        for workers in (2, 3):
            makespan, busy = pack([units[u] for u in order], workers)
            lower = max(sum(units.values()) / workers, max(units.values()))
            print(
                f"  {label}, {workers} workers: makespan {makespan:6.1f} s (bound {lower:6.1f} s), "
                f"busy {[round(b) for b in busy]}"
            )
    big = sorted(units.items(), key=lambda kv: -kv[1])[:5]
    print("  largest units: " + ", ".join(f"{name} {cpu:.1f}" for name, cpu in big))

    if args.write_costs:
        costs = {name: round(cpu, 1) for name, cpu in sorted(units.items()) if cpu >= 1.0}
        args.write_costs.write_text(json.dumps(costs, indent=1) + "\n")
        print(f"\nwrote {len(costs)} group costs to {args.write_costs}")


if __name__ == "__main__":
    main()
