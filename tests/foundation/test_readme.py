"""The README's and docs' commands are real: every pixi task, environment, script, ai-worker subcommand and link
they name exists, and every setting the worker reads is documented."""

from __future__ import annotations

import re
from pathlib import Path

import tomli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
DOCS = "\n".join(path.read_text() for path in DOC_FILES)
README_MAX_LINES = 200  # the README is the one-screen entry point; the rest lives under docs/
MANIFEST = tomli.loads((ROOT / "pixi.toml").read_text())


def _code() -> str:
    """Text inside fenced code blocks and inline code spans."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", DOCS, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", DOCS, flags=re.S))
    return "\n".join(blocks + spans)


def test_quickstart_is_the_two_literal_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [
        line.split("#", 1)[0].strip()
        for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", quickstart, flags=re.S)
        for line in block.splitlines()
        if line.strip().startswith("pixi run")
    ]
    assert commands == ["pixi run -e cpu worker", "pixi run -e cpu test"]


def test_pixi_tasks_and_environments_named_in_readme_exist() -> None:
    tasks = set(MANIFEST["tasks"])
    envs = set(MANIFEST["environments"])
    found = re.findall(r"pixi run (?:-e (\S+) )?([\w-]+)", _code())
    assert found, "the README names no pixi task"
    for env, task in found:
        # `pixi run` also runs plain commands inside the environment; only these are used that way.
        assert task in tasks or task in {"python", "ai-worker", "pytest"}, f"README runs unknown pixi task {task!r}"
        assert not env or env in envs, f"README names unknown environment {env!r}"


def test_scripts_named_in_readme_exist() -> None:
    for path in set(
        re.findall(r"(?<![\w/.-])((?:scripts|bench|docker|deploy|tests)/[\w./-]+\.(?:sh|ps1|py|yaml|yml|json))", DOCS)
    ):
        assert (ROOT / path).exists(), f"README names missing file {path}"


def test_cli_subcommands_named_in_readme_exist() -> None:
    from ai_worker.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    known = set(subparsers.choices)  # type: ignore[attr-defined]
    named = set(re.findall(r"ai-worker ([a-z][a-z-]*)", _code()))
    assert named, "the README names no ai-worker command"
    assert named <= known, f"README names unknown ai-worker commands: {sorted(named - known)}"


def test_readme_is_a_short_entry_point() -> None:
    lines = README.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"
    for page in ("docs/design.md", "docs/engine.md", "docs/cli.md", "docs/configuration.md", "docs/deployment.md"):
        assert page in README, f"README does not link {page}"


def test_relative_links_resolve() -> None:
    """Every relative Markdown link in the README and docs points at a file or folder of this checkout."""
    for path in DOC_FILES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            resolved = (path.parent / target).resolve()
            assert resolved.exists(), f"{path.relative_to(ROOT)} links missing {target}"
            assert ROOT in resolved.parents or resolved == ROOT, f"{path.relative_to(ROOT)} links outside: {target}"
