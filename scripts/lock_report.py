"""Size budgets measured from the lock: what each environment downloads, per platform, before anything is built.

Reads `pixi.lock` (format v6, and v7 with its top-level `platforms` list, whose entries may be short aliases such as
`p1` for a rich platform, with the real conda subdir beside them) and prints, per environment and platform: the
package count, the download size (sum of the archives' `size`), the largest packages, and every CUDA/cuDNN/NCCL/
NVIDIA package. Budgets come from one place, `[tool.ai-worker.size-budgets]` in pixi.toml.

Exit status: 0 all within budget; 1 an environment is over its budget, or a CUDA-free environment (`cpu`) holds a
CUDA package; 2 the lock is missing or unreadable.

    python scripts/lock_report.py pixi.lock [--manifest pixi.toml] [--cuda-free cpu] [--top 15]
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_VERSIONS = (6, 7)
TOP_DEFAULT = 15
CUDA_FREE_DEFAULT = ("cpu",)  # environments that must never carry CUDA (the CPU image)
BUDGET_TABLE = ("tool", "ai-worker", "size-budgets")
PACKAGE_KINDS = ("conda", "pypi", "conda_source")

# NVIDIA's user-space stack as conda-forge and PyPI name it. `libcurl` and friends share the `libcu` prefix, so the
# CUDA libraries are named one by one rather than by prefix.
CUDA_NAME = re.compile(
    r"^(cuda|cudnn|cutensor|nccl|nvidia-|libnvidia|libnv|libnpp|magma|libmagma"
    r"|libcu(blas|dnn|dss|fft|file|rand|solver|sparse|tensor|pti|dart))"
)
# A CUDA build of an otherwise neutral package (pytorch `cuda129_...`, onnxruntime `..._cuda`).
CUDA_BUILD = re.compile(r"cuda")

UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


class LockError(Exception):
    """The lock cannot be read: missing, not YAML, or a format this script does not know."""


@dataclass(frozen=True)
class Package:
    kind: str
    name: str
    build: str
    size: int | None  # bytes of the archive; None where the lock does not record it (PyPI and source entries)

    @property
    def is_cuda(self) -> bool:
        return bool(CUDA_NAME.match(self.name)) or bool(CUDA_BUILD.search(self.build))


@dataclass
class Slice:
    """One environment on one platform."""

    environment: str
    platform: str  # the name the lock uses (v7 may write an alias such as `p1`)
    subdir: str  # the conda platform it installs on
    packages: list[Package] = field(default_factory=list)

    @property
    def download_bytes(self) -> int:
        return sum(p.size or 0 for p in self.packages)

    @property
    def unsized(self) -> list[Package]:
        return [p for p in self.packages if p.size is None]

    @property
    def cuda(self) -> list[Package]:
        return [p for p in self.packages if p.is_cuda]

    def largest(self, n: int) -> list[Package]:
        return sorted((p for p in self.packages if p.size), key=lambda p: p.size or 0, reverse=True)[:n]


def parse_size(text: str) -> int:
    """'450MiB' -> 471859200. Binary (KiB/MiB/GiB) and decimal (KB/MB/GB) units; a bare number is bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 450MiB or 4GiB)")
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


def human(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _name_and_build(kind: str, location: str, entry: dict[str, Any]) -> tuple[str, str]:
    if "name" in entry:
        return str(entry["name"]), str(entry.get("build", ""))
    if kind == "conda":
        # <name>-<version>-<build>.conda|.tar.bz2; names may contain dashes, version and build never do.
        stem = location.rsplit("/", 1)[-1].removesuffix(".conda").removesuffix(".tar.bz2")
        parts = stem.rsplit("-", 2)
        if len(parts) == 3:
            return parts[0], parts[2]
    return location, ""


def load(path: Path) -> list[Slice]:
    """Every (environment, platform) of the lock with its packages."""
    if not path.is_file():
        raise LockError(
            f"{path} not found. The lock is written by `pixi lock` on a machine that reaches conda-forge and must "
            "be committed; CI's `lock` job proposes one as an artifact when it is missing."
        )
    try:
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise LockError(f"{path} is not YAML: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") not in SUPPORTED_VERSIONS:
        version = data.get("version") if isinstance(data, dict) else None
        raise LockError(f"{path}: lock format version {version!r}; this script reads {SUPPORTED_VERSIONS}")

    # v7: platform names map to conda subdirs (an alias like `p1` for a rich platform carries `subdir`).
    subdirs = {str(p["name"]): str(p.get("subdir", p["name"])) for p in data.get("platforms") or []}

    catalogue: dict[tuple[str, str], Package] = {}
    for entry in data.get("packages") or []:
        kind = next((k for k in PACKAGE_KINDS if k in entry), None)
        if kind is None:
            continue
        location = str(entry[kind])
        name, build = _name_and_build(kind, location, entry)
        size = entry.get("size")
        catalogue.setdefault((kind, location), Package(kind, name, build, int(size) if size is not None else None))

    slices = []
    for env_name, env in (data.get("environments") or {}).items():
        for platform, refs in (env.get("packages") or {}).items():
            piece = Slice(str(env_name), str(platform), subdirs.get(str(platform), str(platform)))
            for ref in refs or []:
                kind = next((k for k in PACKAGE_KINDS if k in ref), None)
                if kind is None:
                    continue
                key = (kind, str(ref[kind]))
                if key not in catalogue:
                    raise LockError(f"{path}: {env_name}/{platform} refers to {kind} {key[1]} missing from `packages`")
                piece.packages.append(catalogue[key])
            slices.append(piece)
    return slices


def load_budgets(manifest: Path) -> dict[str, int]:
    """`[tool.ai-worker.size-budgets]` of pixi.toml: environment -> bytes. No manifest, no budgets."""
    if not manifest.is_file():
        return {}
    table: Any = tomllib.loads(manifest.read_text())
    for key in BUDGET_TABLE:
        table = table.get(key, {}) if isinstance(table, dict) else {}
    return {str(env): parse_size(str(value)) for env, value in table.items()}


def report(slices: list[Slice], budgets: dict[str, int], cuda_free: tuple[str, ...], top: int) -> list[str]:
    """Print the report; return the problems found (empty: all good)."""
    problems = []
    for piece in slices:
        label = piece.platform if piece.platform == piece.subdir else f"{piece.platform} ({piece.subdir})"
        budget = budgets.get(piece.environment)
        verdict = ""
        if budget is not None:
            within = piece.download_bytes <= budget
            verdict = f"  budget {human(budget)}: {'ok' if within else 'OVER'}"
            if not within:
                problems.append(
                    f"{piece.environment}/{label}: {human(piece.download_bytes)} is over its budget {human(budget)}"
                )
        print(
            f"== {piece.environment} / {label}: {len(piece.packages)} packages, {human(piece.download_bytes)}{verdict}"
        )
        for pkg in piece.largest(top):
            print(f"   {human(pkg.size or 0):>11}  {pkg.name} {pkg.build}".rstrip())
        if piece.unsized:
            print(f"   ({len(piece.unsized)} PyPI/source packages carry no size in the lock and are not counted)")
        cuda = sorted({p.name for p in piece.cuda})
        if cuda:
            print(f"   CUDA packages ({len(cuda)}): {', '.join(cuda)}")
            if piece.environment in cuda_free:
                problems.append(f"{piece.environment}/{label} must be CUDA-free but holds: {', '.join(cuda)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lock", type=Path, nargs="?", default=Path("pixi.lock"))
    parser.add_argument("--manifest", type=Path, help="pixi.toml with the budgets (default: beside the lock)")
    parser.add_argument("--cuda-free", action="append", help="an environment that must hold no CUDA (default: cpu)")
    parser.add_argument("--top", type=int, default=TOP_DEFAULT, help="largest packages listed per platform")
    args = parser.parse_args(argv)

    try:
        slices = load(args.lock)
        budgets = load_budgets(args.manifest or args.lock.parent / "pixi.toml")
    except (LockError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"lock-report: {exc}", file=sys.stderr)
        return 2
    problems = report(slices, budgets, tuple(args.cuda_free or CUDA_FREE_DEFAULT), args.top)
    for problem in problems:
        print(f"lock-report: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
