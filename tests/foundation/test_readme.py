"""The README's commands are real: every pixi task, environment, script and ai-worker subcommand it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import tomli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = "\n".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))  # the docs/ pages
MANIFEST = tomli.loads((ROOT / "pixi.toml").read_text())


def _code() -> str:
    """Text inside fenced code blocks and inline code spans."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
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
        re.findall(r"(?<![\w/.-])((?:scripts|bench|docker|deploy|tests)/[\w./-]+\.(?:sh|ps1|py|yaml|yml|json))", README)
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


def test_every_setting_the_worker_reads_is_documented(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Records each variable name `Settings.from_env` looks up, aliases included, and finds it in the README."""
    from ai_worker import config

    looked_up: list[str] = []
    original = config._Env.raw

    def recording(self: config._Env, name: str, *aliases: str) -> tuple[str, str] | None:
        looked_up.extend([config.PREFIX + name, *aliases])
        return original(self, name, *aliases)

    monkeypatch.setattr(config._Env, "raw", recording)
    config.Settings.from_env({})
    assert len(looked_up) > 30
    documented = README + DOCS
    missing = sorted({name for name in looked_up if f"`{name}`" not in documented and f"{name}`" not in documented})
    assert not missing, f"settings missing from the README and docs/: {missing}"
