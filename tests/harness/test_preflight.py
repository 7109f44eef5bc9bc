"""Preflight: Compose v2 found or refused with one clear line; a missing engine is exit 3.

The fake ``docker-compose`` executables here test our parsing of a version answer and our
refusal of v1; they stand in for nothing Docker does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness_helpers import render_default, run_harness, run_servegen, write_executable

from generator.errors import EnvironmentMissing
from generator.harness.context import HarnessOptions
from generator.harness.preflight import check_disk, find_compose, parse_compose_version


@pytest.mark.parametrize(
    ("answer", "version"),
    [
        ("Docker Compose version v2.40.3", (2, 40, 3)),
        ("2.24.0", (2, 24, 0)),
        ("docker-compose version 1.29.2, build unknown", (1, 29, 2)),
        ("no version here", None),
    ],
)
def test_parse_compose_version(answer: str, version: tuple[int, int, int] | None) -> None:
    assert parse_compose_version(answer) == version


def test_compose_v1_is_refused_with_a_line_naming_what_to_install(fake_bin: Path) -> None:
    write_executable(fake_bin, "docker-compose", 'echo "docker-compose version 1.29.2, build x"\n')
    with pytest.raises(EnvironmentMissing) as caught:
        find_compose(path=str(fake_bin))
    message = caught.value.message
    assert "Compose 1.29.2 (v1)" in message
    assert "install Compose v2" in message
    assert caught.value.exit_code == 3


def test_compose_v2_older_than_the_overlay_needs_is_refused(fake_bin: Path) -> None:
    write_executable(fake_bin, "docker-compose", 'echo "Docker Compose version v2.20.3"\n')
    with pytest.raises(EnvironmentMissing, match=r"Compose 2\.20\.3, too old"):
        find_compose(path=str(fake_bin))


def test_no_compose_at_all_names_the_plugin(fake_bin: Path) -> None:
    with pytest.raises(EnvironmentMissing, match="Docker Compose not found: install Compose v2"):
        find_compose(path=str(fake_bin))


def test_a_docker_cli_without_the_plugin_falls_back_to_a_standalone_v2(fake_bin: Path) -> None:
    write_executable(
        fake_bin, "docker", "echo \"docker: 'compose' is not a docker command.\" >&2; exit 1\n"
    )
    standalone = write_executable(
        fake_bin, "docker-compose", 'echo "Docker Compose version v2.40.3"\n'
    )
    found = find_compose(path=str(fake_bin))
    assert found.command == (str(standalone),)
    assert found.version == "2.40.3"


def test_too_little_disk_is_environment_missing(tmp_path: Path) -> None:
    assert str(tmp_path) in check_disk([tmp_path], min_free=1)
    with pytest.raises(EnvironmentMissing, match="GB free under"):
        check_disk([tmp_path], min_free=1 << 62)


@pytest.mark.parametrize("host", ["unix:///nonexistent.sock", "tcp://127.0.0.1:1"])
def test_no_engine_is_exit_3_with_one_clear_line(project_dir: Path, host: str) -> None:
    done = run_servegen("test", str(project_dir), "--docker-host", host, timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"no Docker engine answers at {host}" in done.stdout
    assert "install Docker Engine and start it" in done.stdout
    if host.startswith("unix://"):
        assert "(no socket at /nonexistent.sock)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_docker_host_from_the_environment_is_used_and_named(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    json_path = tmp_path / "report.json"
    assert run_harness(HarnessOptions(project_dir=project_dir, json_path=json_path)) == 3
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert report["outcome"] == "environment missing"
    assert report["message"].startswith("no Docker engine answers at unix:///nonexistent.sock")
    assert [step["name"] for step in report["steps"]] == ["project", "preflight"]


def test_an_unwritable_json_path_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    done = run_servegen("test", str(tmp_path), "--json", str(blocker / "report.json"))
    assert done.returncode == 2
    assert "error: cannot write the JSON report to" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_failed_run_is_said_once_by_its_report(tmp_path: Path) -> None:
    # The report names the failure and its exit code; no second "error:" line repeats it.
    done = run_servegen("test", str(tmp_path))
    assert done.returncode == 2
    assert "USAGE ERROR in" in done.stdout
    assert "(exit code 2): " in done.stdout
    assert "does not look like a generated project" in done.stdout
    assert "error:" not in done.stderr


def test_not_a_project_is_a_usage_error(tmp_path: Path) -> None:
    json_path = tmp_path / "report.json"
    code = run_harness(HarnessOptions(project_dir=tmp_path, json_path=json_path))
    assert code == 2
    assert "does not look like a generated project" in json_path.read_text(encoding="utf-8")


@pytest.mark.docker
def test_a_cuda_project_on_an_engine_without_nvidia_is_exit_3(
    docker_client: Any, tmp_path: Path
) -> None:
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this engine has the NVIDIA runtime")
    project = render_default(tmp_path / "render", accelerator="cuda")
    json_path = tmp_path / "report.json"
    assert run_harness(HarnessOptions(project_dir=project, json_path=json_path)) == 3
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert "the project uses CUDA but the engine has no NVIDIA runtime" in report["message"]
    assert [step["name"] for step in report["steps"]] == ["project", "preflight"]
