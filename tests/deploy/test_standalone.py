"""A clone stands alone: no file of the repository points at a document or a path outside the checkout."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(
    "|".join(
        [
            r"/work" + r"/(?:shared|main|wt)\b",  # this machine's layout
            r"\.\./" + r"shared\b",
            r"\.parent\s*/\s*[\"']" + r"shared[\"']",  # ROOT.parent / "shared"
        ]
    )
)
# A design document cited by name must be one the repository holds.
DESIGN_DOC = re.compile(r"\bDESIGN" + r"\.md\b")
SKIP_DIRS = {".git", ".venv", ".pixi", "build", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}


def repository_files() -> list[Path]:
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False)
    if listed.returncode == 0 and listed.stdout:
        files = [REPO / name for name in listed.stdout.decode().split("\0") if name]
    else:  # an export without git metadata
        files = [p for p in REPO.rglob("*") if not SKIP_DIRS & set(p.relative_to(REPO).parts)]
    return [p for p in files if p.is_file()]


def test_nothing_points_outside_the_checkout() -> None:
    found = []
    files = repository_files()
    has_design_doc = any(p.name == "DESIGN.md" for p in files)
    for path in files:
        if path.resolve() == Path(__file__).resolve():
            continue  # its patterns and examples
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line) or (not has_design_doc and DESIGN_DOC.search(line)):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def test_the_pattern_catches_what_it_is_for() -> None:
    for line in ('SCHEMA = ROOT.parent / "shared" / "schemas"', "/work/shared/conda", "../shared/x"):
        assert OUTSIDE.search(line), line
    assert DESIGN_DOC.search("see DESIGN.md §4")
    assert not OUTSIDE.search("docs/design.md and $ORIGIN/../lib inside an environment")
