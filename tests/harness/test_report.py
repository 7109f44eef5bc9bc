"""The report: steps recorded from how their block ends, the table, the JSON file."""

from __future__ import annotations

import io
import json
import signal
import time
from pathlib import Path

import pytest
from harness_helpers import run_harness

from generator.errors import BuildFailed, Interrupted, SmokeFailed
from generator.harness.context import HarnessOptions
from generator.harness.report import LOG_TAIL_LINES, Report, format_figures


def _report() -> Report:
    return Report(Path("/projects/demo"), "sgtest-0000beef")


def test_a_block_that_ends_normally_is_passed_with_its_figures_and_seconds() -> None:
    report = _report()
    with report.step("build") as step:
        step.figures.update(image_size_bytes=954_000_000, layers=8)
        time.sleep(0.05)
    (recorded,) = report.steps
    assert (recorded.name, recorded.status) == ("build", "passed")
    assert recorded.figures == {"image_size_bytes": 954_000_000, "layers": 8}
    assert 0.05 <= recorded.seconds < 5  # the block's own duration, from the monotonic clock
    assert recorded.as_dict()["figures"] == recorded.figures


def test_a_harness_error_marks_the_step_failed_with_message_and_log_tail() -> None:
    report = _report()
    lines = [f"line {n}" for n in range(120)]
    with pytest.raises(BuildFailed), report.step("build"):
        raise BuildFailed("the image build failed", log_tail=lines, log_source="the build")
    step = report.steps[0]
    assert (step.status, step.message, step.log_source) == (
        "failed",
        "the image build failed",
        "the build",
    )
    assert step.log_tail == lines[-LOG_TAIL_LINES:]


def test_an_interrupt_marks_the_step_interrupted_and_still_propagates() -> None:
    report = _report()
    with pytest.raises(Interrupted), report.step("up"):
        raise Interrupted(signal.SIGINT)
    assert report.steps[0].status == "interrupted"
    assert Interrupted(signal.SIGINT).exit_code == 130
    assert Interrupted(signal.SIGTERM).exit_code == 143


def test_json_report_lists_every_step_and_the_verdict(tmp_path: Path) -> None:
    report = _report()
    with report.step("build") as step:
        step.figures.update(build_seconds=12.5, image_size_bytes=10, layers=8)
    report.skip("wheelhouse", "not asked for")
    with pytest.raises(SmokeFailed), report.step("ready"):
        raise SmokeFailed("GET /ready not 200", log_tail=["boom"], log_source="container app")
    report.finish(SmokeFailed("GET /ready not 200"))
    path = tmp_path / "out" / "report.json"
    report.write_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert not list(path.parent.glob("*.partial"))
    assert data["passed"] is False
    assert (data["exit_code"], data["outcome"], data["run_id"]) == (
        5,
        "smoke failed",
        "sgtest-0000beef",
    )
    assert [(s["name"], s["status"]) for s in data["steps"]] == [
        ("build", "passed"),
        ("wheelhouse", "skipped"),
        ("ready", "failed"),
    ]
    assert data["steps"][0]["figures"] == {
        "build_seconds": 12.5,
        "image_size_bytes": 10,
        "layers": 8,
    }
    assert data["steps"][2]["log_tail"] == ["boom"]
    assert data["steps"][2]["log_source"] == "container app"
    assert "log_tail" not in data["steps"][0]


def test_table_shows_steps_the_failing_log_and_the_verdict() -> None:
    report = _report()
    with report.step("build") as step:
        step.figures.update(image_size_bytes=954_000_000, layers=8)
    with pytest.raises(SmokeFailed), report.step("up"):
        raise SmokeFailed("compose up failed", log_tail=["sha256 mismatch"], log_source="x")
    report.finish(SmokeFailed("compose up failed"))
    out = io.StringIO()
    report.print_table(out)
    text = out.getvalue()
    assert "image_size=954 MB, layers=8" in text
    assert "  | sha256 mismatch" in text
    assert "SMOKE FAILED" in text
    assert "(exit code 5): compose up failed" in text


def test_figures_render_sizes_in_megabytes_and_skip_nested_values() -> None:
    text = format_figures(
        {
            "added_bytes": 766_000_000,
            "t": 1.5,
            "n": None,
            "d": {"a": 1},
            "id": "sha256:" + "ab" * 32,
        }
    )
    assert text == "added=766 MB, t=1.5, id=abababababab"


def test_an_unforeseen_error_is_exit_1_with_the_traceback_only_in_the_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generator.harness import runner

    def broken(root: Path) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(runner, "load_project", broken)
    out = io.StringIO()
    json_path = tmp_path / "report.json"
    code = run_harness(HarnessOptions(project_dir=tmp_path, json_path=json_path), out=out)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert code == 1
    assert data["message"] == "internal error: RuntimeError: boom"
    assert "Traceback" in data["traceback"]
    assert "Traceback" not in out.getvalue()
    assert "This is a bug in servegen" in out.getvalue()
