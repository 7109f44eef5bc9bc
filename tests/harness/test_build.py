"""The build step's one-line reason for a failed build."""

from __future__ import annotations

from generator.harness.build import build_error


def test_a_tools_own_error_beats_buildkits_generic_line() -> None:
    lines = [
        "#7 0.912 Looking in links: /wheels",
        "#7 1.204 ERROR: No matching distribution found for torch==2.13.0",
        '#7 ERROR: process "/bin/bash -c pip install" did not complete successfully: exit code: 1',
        "failed to solve: process did not complete successfully",
    ]
    assert build_error(lines) == "ERROR: No matching distribution found for torch==2.13.0"


def test_a_missing_base_image_is_named() -> None:
    lines = [
        "#3 [app internal] load metadata for docker.io/nonexistent/python:0",
        "#3 ERROR: failed to do request: Head https://registry.invalid/v2/manifests/0",
        "failed to solve: rpc error",
    ]
    assert build_error(lines).startswith("ERROR: failed to do request: Head")


def test_without_an_error_line_the_last_line_is_used_and_long_lines_shortened() -> None:
    assert build_error(["", "something odd happened", ""]) == "something odd happened"
    assert build_error([]) == "no output"
    shortened = build_error(["x" * 500], limit=50)
    assert len(shortened) == 50
    assert shortened.endswith("...")
