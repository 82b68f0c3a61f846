"""Size budgets measured from the lock: what each environment downloads, per platform, before anything is built.

Reads `pixi.lock` (format v6, and v7 with its top-level `platforms` list, whose entries may be short aliases such as
`p1` for a rich platform, with the real conda subdir beside them) and prints, per environment and platform: the
package count, the download size, the largest packages, and every CUDA/cuDNN/NCCL/NVIDIA package.

Sizes: conda entries carry their archive's `size`. PyPI entries carry none; their wheel sizes are looked up in the
index's JSON API (`--pypi-json-url`, PyPI by default; a wheel given by local path is measured on disk). A wheel whose
size cannot be found is named and left out, and the total is then printed as a lower bound ("≥").

Checks, from pixi.toml: the budgets of `[tool.ai-worker.size-budgets]` (download size per environment and platform);
no CUDA package in an environment without the `gpu` feature; no test tool (the `test` feature's packages) in an image
environment (`[tool.ai-worker.images]`).

Budgets are enforced only against a committed lock: until pixi.lock is tracked by git (a lock just solved by CI's
`lock` job is a proposal), an environment over its budget is reported, not failed (`--enforce` / `--report-only`
override). A missing lock is a notice then, and an error under `--enforce`.

Exit status: 0 fine (or budgets only reported); 1 an enforced budget is exceeded, a CUDA-free environment holds CUDA,
or an image environment holds a test tool; 2 the lock is unreadable, or missing under `--enforce`.

    python scripts/lock_report.py pixi.lock [--manifest pixi.toml] [--enforce|--report-only] [--offline] [--top 15]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_VERSIONS = (6, 7)
TOP_DEFAULT = 15
CUDA_FREE_DEFAULT = ("cpu",)  # without a manifest: environments that must never carry CUDA
BUDGET_TABLE = ("tool", "ai-worker", "size-budgets")
IMAGES_TABLE = ("tool", "ai-worker", "images")
PACKAGE_KINDS = ("conda", "pypi", "conda_source")
PYPI_JSON_URL = "https://pypi.org/pypi"  # <url>/<name>/<version>/json lists each file with its `size`
# Packages of the `test` feature that runtime libraries may legitimately pull in themselves: not test tools.
SHARED_LIBRARIES = frozenset({"jsonschema", "tomli"})

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
    size: int | None  # bytes of the archive; None where unknown (PyPI before lookup, source entries)
    location: str = ""  # the URL or path the lock gives
    version: str = ""

    @property
    def is_cuda(self) -> bool:
        return bool(CUDA_NAME.match(self.name)) or bool(CUDA_BUILD.search(self.build))

    @property
    def is_local_source(self) -> bool:
        """The project itself or another path dependency: built here, nothing to download."""
        return self.kind == "conda_source" or (
            self.kind in ("pypi", "conda") and not re.match(r"[a-z+]+://", self.location) and self.size is None
        )


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
        """Packages that are downloaded but whose size is unknown: the total is a lower bound while any remain."""
        return [p for p in self.packages if p.size is None and not p.is_local_source]

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
        package = Package(
            kind, name, build, int(size) if size is not None else None, location, str(entry.get("version", ""))
        )
        catalogue.setdefault((kind, location), package)

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


# ---- PyPI wheel sizes -------------------------------------------------------------------------------------------

Fetch = Callable[[str], Any]


def fetch_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def size_pypi_packages(slices: list[Slice], base: Path, json_url: str | None, fetch: Fetch = fetch_json) -> list[str]:
    """Fill in the size of every PyPI wheel the lock names: on disk for a local path, else from the index's JSON API
    (`json_url`; None: offline). Returns notes on what could not be sized."""
    wanted = {p for piece in slices for p in piece.packages if p.kind == "pypi" and p.size is None}
    sized: dict[Package, Package] = {}
    notes: list[str] = []
    releases: dict[tuple[str, str], dict[str, int] | None] = {}
    for pkg in sorted(wanted, key=lambda p: p.location):
        parsed = urllib.parse.urlparse(pkg.location)
        filename = Path(urllib.parse.unquote(parsed.path)).name
        if parsed.scheme in ("", "file"):
            path = Path(urllib.parse.unquote(parsed.path)) if parsed.scheme == "file" else base / pkg.location
            if path.is_file():
                sized[pkg] = replace(pkg, size=path.stat().st_size)
            continue  # a directory is the project or a path dependency: built, not downloaded
        if json_url is None or not pkg.version:
            continue
        key = (pkg.name, pkg.version)
        if key not in releases:
            try:
                data = fetch(f"{json_url.rstrip('/')}/{pkg.name}/{pkg.version}/json")
                releases[key] = {str(f["filename"]): int(f["size"]) for f in data.get("urls", []) if "size" in f}
            except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError) as exc:
                releases[key] = None
                notes.append(f"no size for {pkg.name} {pkg.version}: {exc.__class__.__name__} from {json_url}")
        files = releases[key]
        if files is not None and filename in files:
            sized[pkg] = replace(pkg, size=files[filename])
    for piece in slices:
        piece.packages = [sized.get(p, p) for p in piece.packages]
    return notes


# ---- pixi.toml -------------------------------------------------------------------------------------------------------


def _table(data: Any, path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    return data if isinstance(data, dict) else {}


def _manifest(manifest: Path) -> dict[str, Any]:
    return tomllib.loads(manifest.read_text()) if manifest.is_file() else {}


def load_budgets(manifest: Path) -> dict[str, int]:
    """`[tool.ai-worker.size-budgets]` of pixi.toml: environment -> bytes. No manifest, no budgets."""
    return {str(env): parse_size(str(value)) for env, value in _table(_manifest(manifest), BUDGET_TABLE).items()}


def cuda_free_environments(manifest: Path) -> tuple[str, ...]:
    """Environments whose features do not include `gpu` (the implicit `default` counts when undeclared)."""
    data = _manifest(manifest)
    if not data:
        return CUDA_FREE_DEFAULT
    envs = _table(data, ("environments",))
    names = [
        name for name, env in envs.items() if "gpu" not in (env.get("features", env) if isinstance(env, dict) else env)
    ]
    return tuple(sorted({*names, *([] if "default" in envs else ["default"])}))


def image_environments(manifest: Path) -> dict[str, str]:
    """`[tool.ai-worker.images]`: image -> the environment it installs."""
    return {str(k): str(v) for k, v in _table(_manifest(manifest), IMAGES_TABLE).items()}


def test_tools(manifest: Path) -> frozenset[str]:
    """The `test` feature's packages (all targets), less libraries that runtime packages may need themselves."""
    feature = _table(_manifest(manifest), ("feature", "test"))
    names: set[str] = set()
    for table in [feature, *_table(feature, ("target",)).values()]:
        names |= set(_table(table, ("dependencies",))) | set(_table(table, ("pypi-dependencies",)))
    return frozenset(n.lower() for n in names) - SHARED_LIBRARIES


def lock_is_committed(lock: Path) -> bool:
    """Tracked by git. A proposal written by `pixi lock` in CI is not, and neither is a lock outside a git checkout
    (nothing says it was reviewed): their budgets are reported only."""
    if not lock.is_file():
        return False
    try:
        run = subprocess.run(
            ["git", "-C", str(lock.parent), "ls-files", "--error-unmatch", lock.name], capture_output=True, check=False
        )
    except OSError:
        return False
    return run.returncode == 0


# ---- the report --------------------------------------------------------------------------------------------------


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)  # always fail: CUDA where none may be, test tools in an image
    over_budget: list[str] = field(default_factory=list)  # fail only when budgets are enforced


def report(
    slices: list[Slice],
    budgets: dict[str, int],
    cuda_free: tuple[str, ...],
    top: int,
    images: dict[str, str] | None = None,
    tools: frozenset[str] = frozenset(),
) -> Findings:
    """Print the report; return what is wrong."""
    found = Findings()
    image_envs = set((images or {}).values())
    for piece in slices:
        label = piece.platform if piece.platform == piece.subdir else f"{piece.platform} ({piece.subdir})"
        unsized = piece.unsized
        total = ("≥ " if unsized else "") + human(piece.download_bytes)
        budget = budgets.get(piece.environment)
        verdict = ""
        if budget is not None:
            within = piece.download_bytes <= budget
            verdict = f"  budget {human(budget)}: {'ok' if within else 'OVER'}"
            if within and unsized:
                verdict += " (lower bound)"
            if not within:
                found.over_budget.append(f"{piece.environment}/{label}: {total} is over its budget {human(budget)}")
        image = next((i for i, e in (images or {}).items() if e == piece.environment), None)
        role = f" [image {image}]" if image else ""
        print(f"== {piece.environment}{role} / {label}: {len(piece.packages)} packages, {total}{verdict}")
        for pkg in piece.largest(top):
            print(f"   {human(pkg.size or 0):>11}  {pkg.name} {pkg.build}".rstrip())
        if unsized:
            names = ", ".join(sorted(p.name for p in unsized))
            print(f"   not counted, size unknown ({len(unsized)}): {names}")
        cuda = sorted({p.name for p in piece.cuda})
        if cuda:
            print(f"   CUDA packages ({len(cuda)}): {', '.join(cuda)}")
            if piece.environment in cuda_free:
                found.errors.append(f"{piece.environment}/{label} must be CUDA-free but holds: {', '.join(cuda)}")
        if piece.environment in image_envs:
            shipped = sorted({p.name for p in piece.packages if p.name.lower() in tools})
            if shipped:
                found.errors.append(
                    f"{piece.environment}/{label} is an image environment but holds test tools: {', '.join(shipped)}"
                )
    return found


def main(argv: list[str] | None = None, fetch: Fetch = fetch_json) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lock", type=Path, nargs="?", default=Path("pixi.lock"))
    parser.add_argument("--manifest", type=Path, help="pixi.toml with the budgets (default: beside the lock)")
    parser.add_argument(
        "--cuda-free", action="append", help="an environment that must hold no CUDA (default: those without `gpu`)"
    )
    parser.add_argument("--top", type=int, default=TOP_DEFAULT, help="largest packages listed per platform")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--enforce", action="store_true", help="fail on budgets even if the lock is not committed")
    mode.add_argument("--report-only", action="store_true", help="never fail on budgets")
    parser.add_argument("--pypi-json-url", default=PYPI_JSON_URL, help="index JSON API for PyPI wheel sizes")
    parser.add_argument("--offline", action="store_true", help="look up no PyPI wheel size")
    args = parser.parse_args(argv)

    manifest = args.manifest or args.lock.parent / "pixi.toml"
    committed = lock_is_committed(args.lock)
    enforce = args.enforce or (committed and not args.report_only)
    if not args.lock.is_file() and not args.enforce:
        print(
            f"lock-report: no {args.lock}: nothing to measure yet. It is written by `pixi lock` on a machine that "
            "reaches conda-forge and must be committed; budgets are enforced from then on."
        )
        return 0
    try:
        slices = load(args.lock)
        budgets = load_budgets(manifest)
        cuda_free = tuple(args.cuda_free) if args.cuda_free else cuda_free_environments(manifest)
        images, tools = image_environments(manifest), test_tools(manifest)
    except (LockError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"lock-report: {exc}", file=sys.stderr)
        return 2
    notes = size_pypi_packages(slices, args.lock.parent, None if args.offline else args.pypi_json_url, fetch)
    found = report(slices, budgets, cuda_free, args.top, images, tools)
    for note in notes:
        print(f"lock-report: {note}")
    for error in found.errors:
        print(f"lock-report: {error}", file=sys.stderr)
    for over in found.over_budget:
        print(f"lock-report: {over}", file=sys.stderr if enforce else sys.stdout)
    if found.over_budget and not enforce:
        why = "--report-only" if args.report_only else f"{args.lock.name} is not committed yet"
        print(f"lock-report: budgets reported, not enforced ({why})")
    return 1 if found.errors or (enforce and found.over_budget) else 0


if __name__ == "__main__":
    sys.exit(main())
