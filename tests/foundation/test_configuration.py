"""Settings: read through pydantic-settings with their aliases and deprecations, errors that name the variable,
and docs/configuration.md generated from the Settings model (`python tests/foundation/test_configuration.py`
rewrites its table; the test fails when the two differ)."""

from __future__ import annotations

import dataclasses
import pickle
import re
import sys
from pathlib import Path
from typing import Any, get_origin

import pytest

from ai_worker.config import ConfigError, Settings
from ai_worker.config_env import Variable, variables
from ai_worker.jobs import SPECS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
BEGIN, END = "<!-- settings table: generated from ai_worker/config.py -->", "<!-- end of settings table -->"
SECTION_TITLES = {
    "": "Worker",
    "inputs": "Job inputs",
    "vision": "Vision jobs (OMR, segmentation, handwriting, video)",
    "ocr": "OCR (Google Vision)",
    "embedding": "Embeddings",
    "llm": "Problem generation (OpenAI)",
}


def _value(var: Variable) -> Any:
    settings = Settings()
    head, _, rest = var.field.partition(".")
    value: Any = settings
    if rest and head in SPECS and SPECS[head].settings:  # a section a job type declares
        value, var_path = settings.section(SPECS[head].settings), rest
    else:
        var_path = var.field
    for part in var_path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def _default(var: Variable) -> str:
    value = _value(var)
    if isinstance(value, dict):  # the every-tier variable: no default of its own
        return "unset"
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        value = ",".join(value)
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def table() -> str:
    lines: list[str] = []
    current = None
    for var in variables():
        head, _, rest = var.field.partition(".")
        section = head if rest and get_origin(var.info.annotation) is not dict else ""  # not `queue_names.lite`
        if section != current:
            current = section
            title = SECTION_TITLES.get(section, f"Job type `{section}`")
            lines += ["", f"### {title}", "", "| Variable | Default | Meaning | Also accepted |"]
            lines.append("| --- | --- | --- | --- |")
        meaning = var.info.description or ""
        if get_origin(var.info.annotation) is dict:
            tier = var.field.rpartition(".")[2] if "." in var.field else None
            meaning = f"{meaning} Tier {tier}." if tier else f"{meaning} One name for every tier (wins)."
        also = [f"`{n}` (legacy)" for n in var.legacy] + [f"`{n}` (deprecated)" for n in var.deprecated]
        lines.append(f"| `{var.name}` | {_default(var)} | {meaning} | {', '.join(also) or '-'} |")
    return "\n".join([BEGIN, *lines, "", END])


def _documented() -> str:
    text = DOC.read_text()
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def test_configuration_doc_lists_every_setting_as_the_model_declares_it() -> None:
    assert _documented() == table(), "docs/configuration.md is stale: run python tests/foundation/test_configuration.py"


def test_every_listed_variable_is_read() -> None:
    names = [var.name for var in variables()]
    assert len(names) == len(set(names)) > 50
    assert all(re.fullmatch(r"AI_WORKER_[A-Z0-9_]+", name) for name in names)
    for name in names:  # each one is read: a value either changes the settings or is refused, naming it
        try:
            assert Settings.from_env({name: "@@"}) != Settings(), name
        except ConfigError as exc:
            assert str(exc).startswith(f"{name}='@@': "), exc


def test_platform_names_are_aliases_and_the_shared_queue_wins() -> None:
    env = {"AI_SQS_QUEUE_NAME_LITE": "platform-lite", "AI_WORKER_QUEUE_BASIC": "ours-basic"}
    settings = Settings.from_env({**env, "AI_WORKER_BASIC_POLL_WEIGHT": "5", "AI_WORKER_LITE_POLL_WEIGHT": "2"})
    assert settings.queue_names == {
        "lite": "platform-lite",
        "basic": "ours-basic",
        "premium": "academy-ai-jobs-premium",
    }
    assert settings.poll_weights == {"basic": 5, "lite": 2, "premium": 1}
    both = {"AI_WORKER_QUEUE_LITE": "ours", "AI_SQS_QUEUE_NAME_LITE": "platform"}
    assert Settings.from_env(both).queue_names["lite"] == "ours"
    assert set(Settings.from_env({**env, "AI_WORKER_QUEUE": "one"}).queue_names.values()) == {"one"}


def test_words_blank_values_and_lists() -> None:
    settings = Settings.from_env(
        {"AI_WORKER_RESULTS_QUEUE": "none", "AI_WORKER_SLOTS": "auto", "AI_WORKER_OCR_LANGUAGE_HINTS": "ja, en,"}
    )
    assert settings.results_queue is None and settings.slots is None and settings.ocr.language_hints == ("ja", "en")
    assert Settings.from_env({"AI_WORKER_SLOTS": " 3 ", "AI_WORKER_JOB_TIMEOUT_S": ""}) == dataclasses.replace(
        Settings(), slots=3
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("AI_WORKER_BACKEND", "cloud", "'auto', 'aws' or 'local'"),
        ("AI_WORKER_LITE_POLL_WEIGHT", "0", "greater than or equal to 1"),
        ("AI_SQS_QUEUE_NAME_BASIC", " ", None),  # blank: unset, not an error
        ("AI_WORKER_SLOTS", "many", "valid integer"),
        ("AI_WORKER_INPUT_ALLOW_HTTP", "maybe", "valid boolean"),
        ("AI_WORKER_OPENAI_TIMEOUT_S", "0", "greater than or equal to 0.1"),
        ("AI_WORKER_PDF_MAX_DPI", "5000", "less than or equal to 1200"),
        ("AI_WORKER_TIER", "tpu", "'cpu' or 'gpu'"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(name: str, value: str, says: str | None) -> None:
    if says is None:
        assert Settings.from_env({name: value}) == Settings()
        return
    with pytest.raises(ConfigError) as error:
        Settings.from_env({name: value})
    assert str(error.value).startswith(f"{name}={value!r}: ") and says in str(error.value)


def test_worker_kind_and_its_deprecated_name(caplog: pytest.LogCaptureFixture) -> None:
    assert Settings.from_env({"AI_WORKER_KIND": "gpu"}).worker_kind == "gpu"
    with pytest.warns(DeprecationWarning, match="AI_WORKER_TIER is deprecated: set AI_WORKER_KIND"):
        assert Settings.from_env({"AI_WORKER_TIER": "gpu"}).worker_kind == "gpu"
    assert "AI_WORKER_TIER is deprecated" in caplog.text
    with pytest.warns(DeprecationWarning):
        assert Settings.from_env({"AI_WORKER_TIER": "gpu", "AI_WORKER_KIND": "cpu"}).worker_kind == "cpu"


def test_settings_are_frozen_dataclasses_that_survive_a_process_boundary() -> None:
    settings = Settings.from_env({"AI_WORKER_OCR_TIMEOUT_S": "5", "AI_SQS_QUEUE_NAME_LITE": "q"})
    assert pickle.loads(pickle.dumps(settings)) == settings  # job processes are spawned with their settings
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.slots = 2  # type: ignore[misc]
    # The limits are policy for deployed values: code (tests) may go below them.
    assert dataclasses.replace(settings, visibility_timeout_s=3).visibility_timeout_s == 3


def test_the_health_probe_reads_its_two_settings_without_pydantic() -> None:
    env = {"AI_WORKER_HEARTBEAT_FILE": " /run/hb ", "AI_WORKER_HEARTBEAT_MAX_AGE_S": "45", "AI_WORKER_SLOTS": "x"}
    probe = Settings.for_health_probe(env)
    assert (probe.heartbeat_file, probe.heartbeat_max_age_s) == ("/run/hb", 45.0)
    assert probe == dataclasses.replace(Settings(), heartbeat_file="/run/hb", heartbeat_max_age_s=45.0)
    assert Settings.for_health_probe({}) == Settings()
    with pytest.raises(ConfigError, match="AI_WORKER_HEARTBEAT_MAX_AGE_S='soon'"):
        Settings.for_health_probe({"AI_WORKER_HEARTBEAT_MAX_AGE_S": "soon"})


if __name__ == "__main__":
    text = DOC.read_text()
    DOC.write_text(text[: text.index(BEGIN)] + table() + text[text.index(END) + len(END) :])
    print(f"rewrote the settings table of {DOC.relative_to(ROOT)}", file=sys.stderr)
