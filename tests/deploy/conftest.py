"""Fixtures shared by the deployment tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Tools the test environment provides on linux only (their PyPI wheels are published for linux).
LINUX_ONLY = {"hadolint"}


@pytest.fixture
def tool() -> Callable[[str], str]:
    """The path of a linter installed with the test environment (hadolint, cfn-lint, check-jsonschema), found beside
    the running interpreter first, so the tests work whether or not the environment is activated."""

    def find(name: str) -> str:
        beside = Path(sys.executable).parent / name
        found = str(beside) if beside.is_file() else shutil.which(name)
        if not found and name in LINUX_ONLY and not sys.platform.startswith("linux"):
            pytest.skip(f"{name} is in the test environment on linux only (pixi.toml [feature.test.target.linux-*])")
        assert found, f"{name} is part of the test environment (pixi.toml [feature.test])"
        return found

    return find
