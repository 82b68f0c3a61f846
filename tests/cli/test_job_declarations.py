"""One declaration per job type: the registry, tier rules, CLI choices and demo all come from `JobSpec`s.

Adding a job type is one module (here `toy_job`) and one registration line; the test registers a toy job type
and finds it everywhere, then removes it and finds it nowhere.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import toy_job

from ai_worker import jobs
from ai_worker.cli import build_parser
from ai_worker.config import ConfigError, Settings
from ai_worker.config_env import variables
from ai_worker.demo import build_samples
from ai_worker.envelope import Envelope, validate_envelope
from ai_worker.errors import TIER_NOT_ALLOWED, UNSUPPORTED_JOB_TYPE, PermanentError
from ai_worker.jobs.context import JobContext

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def toy() -> Iterator[str]:
    jobs.register(jobs.declaration("toy_job"))  # the one registration line
    try:
        yield toy_job.SPEC.name
    finally:
        jobs.unregister(toy_job.SPEC.name)


def _validate(job_type: str, tier: str) -> str:
    return validate_envelope(Envelope(job_id="j", job_type=job_type, tier=tier))


def test_a_registered_job_type_shows_up_in_registry_tier_rules_cli_and_demo(toy: str) -> None:
    # Registry: the worker resolves the declared handler path and runs it.
    assert jobs.REGISTRY[toy] == "toy_job:handle" and jobs.JOB_TYPES[-1] == toy
    handler = jobs.resolve(jobs.REGISTRY[toy])
    assert handler(JobContext.for_test(toy, {"text": "stressed"})) == {"echo": "desserts"}

    # Tier rules: what the worker enforces on every message.
    assert jobs.lowest_tier(toy) == "lite"
    assert [t for t in ("lite", "basic", "premium") if jobs.allows(t, toy)] == ["lite", "premium"]
    assert _validate(toy, "premium") == "premium"
    with pytest.raises(PermanentError) as refused:
        _validate(toy, "basic")
    assert refused.value.code == TIER_NOT_ALLOWED

    # CLI choices.
    parser = build_parser()
    assert parser.parse_args(["submit", "--type", toy]).type == toy
    assert parser.parse_args(["demo", "--only", f"ocr,{toy}"]).only == ["ocr", toy]
    submit = next(a for a in parser._actions if a.dest == "command").choices["submit"]  # type: ignore[attr-defined]
    assert re.search(rf"\n  {toy} +\[lite,premium\] +the payload's text, reversed\n", submit.format_help())

    # Its settings section: read from the environment with the built-in ones, limits enforced, documented.
    settings = Settings.from_env({"AI_WORKER_TOY_TIMES": "2", "AI_WORKER_OCR_TIMEOUT_S": "5"})
    assert settings.section(toy_job.ToySettings).times == 2 and settings.ocr.timeout_s == 5
    assert handler(JobContext.for_test(toy, {"text": "ab"}, settings=settings)) == {"echo": "ba ba"}
    with pytest.raises(ConfigError, match="AI_WORKER_TOY_TIMES='9': Input should be less than or equal to 3"):
        Settings.from_env({"AI_WORKER_TOY_TIMES": "9"})
    assert "AI_WORKER_TOY_TIMES" in [var.name for var in variables()]

    # Demo listing: its sample, on the lowest tier that runs it.
    demo_jobs, skipped = build_samples(Settings(), [toy])
    assert not skipped
    assert [(d.job_type, d.tier, d.sample.payload) for d in demo_jobs] == [(toy, "lite", {"text": "stressed"})]


def test_an_unregistered_job_type_is_nowhere() -> None:
    assert "toy_echo" not in jobs.JOB_TYPES and "toy_echo" not in jobs.REGISTRY
    assert Settings.from_env({"AI_WORKER_TOY_TIMES": "9"}) == Settings()  # its variables are not read
    with pytest.raises(PermanentError) as unknown:
        _validate("toy_echo", "lite")
    assert unknown.value.code == UNSUPPORTED_JOB_TYPE
    with pytest.raises(SystemExit):
        build_parser().parse_args(["submit", "--type", "toy_echo"])


def test_a_job_type_is_declared_once_with_known_tiers() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        jobs.register(jobs.SPECS["ocr"])
    with pytest.raises(ValueError, match="unknown tier"):
        jobs.register(dataclasses.replace(toy_job.SPEC, tiers=("gold",)))
    with pytest.raises(ValueError, match=r"package\.module:function"):
        dataclasses.replace(toy_job.SPEC, handler="toy_job.handle")
    assert "toy_echo" not in jobs.SPECS


def test_the_contract_tiers_and_settings_sections_of_the_built_in_job_types() -> None:
    allowed = {tier: sorted(types) for tier, types in jobs.ALLOWED_JOB_TYPES.items()}
    assert allowed == {
        "lite": ["ocr"],
        "basic": ["homework_video_analysis", "ocr", "omr_grading", "question_segmentation"],
        "premium": sorted(jobs.JOB_TYPES),
    }
    sections = {name: type(getattr(Settings(), name)) for name in ("vision", "ocr", "embedding", "llm")}
    assert {spec.name: spec.settings for spec in jobs.SPECS.values()} == {
        "ocr": sections["ocr"],
        "omr_grading": sections["vision"],
        "question_segmentation": sections["vision"],
        "homework_video_analysis": sections["vision"],
        "handwriting_analysis": sections["vision"],
        "embedding": sections["embedding"],
        "problem_generation": sections["llm"],
    }
    for spec in jobs.SPECS.values():
        assert spec.sample is not None, f"{spec.name} has no demo sample"
        assert spec.settings is not None and type(Settings().section(spec.settings)) is spec.settings
        assert spec.limits(Settings()) == (Settings().job_timeout_s, Settings().job_memory_mb)


def test_reading_every_declaration_imports_no_heavy_library() -> None:
    code = (
        "import sys, ai_worker.jobs, ai_worker.cli\n"
        "heavy = ('torch', 'cv2', 'numpy', 'PIL', 'onnxruntime', 'sentence_transformers', 'google', 'openai')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
