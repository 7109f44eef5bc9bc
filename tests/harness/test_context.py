"""The run context: built once after preflight, never changed; later views are new values."""

from __future__ import annotations

import dataclasses
import shutil
import stat
from pathlib import Path

import pytest

from generator.harness.context import HarnessOptions, create_context
from generator.harness.overlay import HOST_PORT_VARIABLE, PLACEHOLDER_SHA256, RUN_LABEL
from generator.harness.preflight import Compose, Environment
from generator.harness.project import load_project

ENV = Environment(
    client=None,
    compose=Compose(("docker", "compose"), "2.40.3"),
    docker_host="unix:///run/other.sock",
    engine_version="20.10.24",
    figures={},
)


def test_names_files_and_variables_of_one_run(project_dir: Path) -> None:
    (project_dir / "secrets" / "db_password.txt").unlink()  # as in a fresh clone
    options = HarnessOptions(
        project_dir,
        base_image="local/python:3.11",
        db_image="local/mysql",
        proxy_image="local/haproxy",
        wheelhouse="auto",
    )
    ctx = create_context(options, load_project(project_dir), ENV, "sgtest-0000beef")
    try:
        assert ctx.app_image == "sgtest-0000beef-model-service:smoke"
        assert ctx.compose.name == "sgtest-0000beef-model-service"
        project_files = (project_dir / "compose.yaml", project_dir / "compose.demo.yaml")
        assert ctx.compose.files == (*project_files, ctx.overlay_path)
        assert ctx.project_compose().files == project_files
        assert stat.S_IMODE(ctx.workdir.stat().st_mode) == 0o700
        env = ctx.compose.env
        assert (env["APP_IMAGE"], env["MYSQL_IMAGE"], env["BASE_IMAGE"]) == (
            ctx.app_image,
            "local/mysql",
            "local/python:3.11",
        )
        assert env["PROXY_IMAGE"] == "local/haproxy"
        assert env["MODEL_SHA256"] == PLACEHOLDER_SHA256
        assert env["DOCKER_HOST"] == "unix:///run/other.sock"
        assert ctx.overlay.build_args == {
            "BASE_IMAGE": "local/python:3.11",
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": "/wheels",
        }
        assert list(ctx.overlay.secret_files) == ["db_password"]
        assert ctx.overlay.secret_files["db_password"].read_text(encoding="utf-8")
        assert ctx.labels == {RUN_LABEL: "sgtest-0000beef"}
    finally:
        shutil.rmtree(ctx.workdir)


def test_the_checksum_gives_new_compose_calls_and_leaves_the_context_as_it_was(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOST_PORT_VARIABLE, "8000")  # the shell's value never pins the port
    ctx = create_context(HarnessOptions(project_dir), load_project(project_dir), ENV, "sgtest-1")
    try:
        with_model = ctx.compose_for_model("ab" * 32)
        assert with_model.env["MODEL_SHA256"] == "ab" * 32
        assert ctx.compose.env["MODEL_SHA256"] == PLACEHOLDER_SHA256
        # The engine picks the app's host port, unless a run pins it (--drills).
        assert with_model.env[HOST_PORT_VARIABLE] == ""
        assert ctx.compose_for_model("ab" * 32, 41234).env[HOST_PORT_VARIABLE] == "41234"
        assert ctx.overlay.build_args == {}
        with pytest.raises(dataclasses.FrozenInstanceError):
            ctx.app_image = "other"  # type: ignore[misc]
    finally:
        shutil.rmtree(ctx.workdir)
