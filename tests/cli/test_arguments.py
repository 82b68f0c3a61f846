"""Argument and configuration errors are usage errors (exit 2), reported before anything is contacted."""

from __future__ import annotations

import pytest

from ai_worker import __version__
from ai_worker.cli import main


@pytest.mark.parametrize("payload", ["{not json", "[1, 2]", '"text"'])
def test_submit_payload_must_be_a_json_object(payload: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "--type", "ocr", "--payload", payload]) == 2
    assert "--payload" in capsys.readouterr().err


def test_a_bad_setting_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AI_WORKER_BACKEND", "cloud")
    assert main(["doctor"]) == 2
    assert "AI_WORKER_BACKEND='cloud'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--only", "ocr,telepathy"],
        ["submit", "--type", "telepathy"],
        ["run", "--kind", "tpu"],
        ["run", "--tier", "tpu"],
        [],
    ],
)
def test_unknown_choices_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"ai-worker {__version__}"
