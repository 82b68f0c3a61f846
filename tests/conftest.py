"""Shared fixtures: a real SQS+S3 HTTP endpoint (moto's server on 127.0.0.1) for the real boto3 client."""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Under pytest-xdist the workers already keep every core busy: each one's numerical libraries get its share of the
# cores (one thread each with `-n auto`, which starts more workers than cores) instead of a pool per core each, whose
# threads would contend with the other workers' (OpenMP threads spin while they wait). Set before numpy, torch or
# OpenCV is imported, and inherited by the processes the tests start (job processes, CLI runs). A plain `pytest`
# keeps the libraries' defaults.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1))
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENCV_FOR_THREADS_NUM"):
        os.environ.setdefault(_var, str(_share))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-profile",
        metavar="DIR",
        default=None,
        help="write each test's CPU time (with child processes) to DIR/<worker>.jsonl; see bench/suite_profile.py",
    )


def pytest_configure(config: pytest.Config) -> None:
    folder = config.getoption("--cpu-profile")
    # In an xdist run each worker profiles itself, the controller (which runs no test) does not.
    if folder and (os.environ.get("PYTEST_XDIST_WORKER") or config.getoption("numprocesses", None) in (None, 0)):
        from cpu_profile import CpuProfile

        config.pluginmanager.register(CpuProfile(Path(folder)), "cpu_profile")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server for the whole session; AWS_* variables point the SDK at it, never at AWS."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_VARS}
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    try:
        yield endpoint
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION")


@pytest.fixture
def unique_prefix() -> str:
    """A prefix for queue/bucket names so tests sharing the moto server never see each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}"


# ---- parallel runs (pytest-xdist) ------------------------------------------------------------------------------------
# `pixi run test` and `.ci/run` run the suite on every core: `-n auto`, with `--dist loadgroup` from pyproject.toml.
# Each worker is a process with its own session fixtures (a moto server on a free port, temporary directories of its
# own), so the workers share nothing but the machine. What must not be split across workers is a module whose tests
# share work: a module-scoped fixture (a generated page set, a scored batch), or, under tests/jobs/, the generated
# inputs and loaded models that a module's tests reuse; on two workers it would all be built twice. Such a module is
# one group, run whole by one worker; every other test is scheduled on its own. (xdist's own loadgroup reads
# `xdist_group` marks through the test id, which pytest 9.2 no longer lets it rewrite: hence a scheduler of ours.)
_SHARED_FIXTURE = re.compile(r"""@pytest\.fixture\([^)]*scope=["'](?:module|class|package)["']""")


@functools.cache
def _shares_work(path: str, root: Path) -> bool:
    if path.startswith("tests/jobs/"):
        return True
    try:
        return bool(_SHARED_FIXTURE.search((root / path).read_text()))
    except OSError:
        return False


def group_of(nodeid: str, root: Path) -> str:
    """The unit the scheduler hands to one worker: a module that shares work, an `xdist_group`, or the test alone."""
    path = nodeid.split("::", 1)[0]
    if "@" not in nodeid and _shares_work(path, root):
        return path
    if nodeid.rfind("@") > nodeid.rfind("]"):
        return nodeid.split("@")[-1]
    return nodeid


# The order the units are handed out: the costliest first, so the long modules start at once and the cheap single
# tests fill the cores at the end, instead of a long module drawn last running alone while the other workers idle.
# The costs are CPU seconds measured by `python bench/suite_profile.py DIR --write-costs tests/suite_costs.json` after
# `pytest --cpu-profile=DIR`; a unit it does not list (a new test, a renamed module) counts as a cheap one, so a stale
# file only makes the order less good, never the run wrong. Refresh it when the figures move.
_COSTS = Path(__file__).with_name("suite_costs.json")
_UNLISTED_S = 0.5


def schedule_order(units: list[str], root: Path) -> list[str]:
    """The units, costliest first (their order in the collection among equals)."""
    try:
        costs: dict[str, float] = json.loads(_COSTS.read_text())
    except (OSError, ValueError):
        costs = {}
    return sorted(units, key=lambda unit: -costs.get(unit, _UNLISTED_S))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker per core, plus one. A good part of the suite waits rather than computes (long polls,
    backoffs, leases running out, subprocesses starting): while one worker waits, the extra one keeps its core busy.
    PYTEST_XDIST_AUTO_NUM_WORKERS still decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from collections import OrderedDict

    from xdist.scheduler import LoadGroupScheduling

    root = config.rootpath
    ordered: list[bool] = []

    class ModuleGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid, root)

        def _assign_work_unit(self, node: Any) -> None:
            # xdist fills its queue in collection order (or by test count); the first units go out from here.
            if not ordered:
                self.workqueue = OrderedDict(
                    (unit, self.workqueue[unit]) for unit in schedule_order(list(self.workqueue), root)
                )
                ordered.append(True)
            super()._assign_work_unit(node)

    return ModuleGroups(config, log)
