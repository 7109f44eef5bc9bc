"""Fixtures of the harness tests: a rendered project, Compose, one shared wheelhouse.

The wheelhouse is filled once (by the harness's own ``auto`` code) into a git-ignored
cache folder and reused by every end-to-end test and every later run, so only the first
run on a machine downloads anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness_helpers import REPO_ROOT, WHEELHOUSE_CACHE, render_default


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A freshly rendered default project."""
    return render_default(tmp_path / "render")


@pytest.fixture(scope="session")
def compose_command() -> tuple[str, ...]:
    """The Compose v2 command line, or a skip (a failure where Docker is required)."""
    from generator.errors import EnvironmentMissing
    from generator.harness.preflight import find_compose

    try:
        return find_compose().command
    except EnvironmentMissing as exc:
        if os.environ.get("SERVEGEN_REQUIRE_DOCKER") == "1":
            pytest.fail(f"Compose v2 required: {exc.message}")
        pytest.skip(exc.message)


@pytest.fixture(scope="session")
def wheelhouse(
    docker_client: Any, standin_images: dict[str, str], tmp_path_factory: Any
) -> Iterator[Path]:
    """The shared wheelhouse for the stand-in Python image, filled when incomplete.

    It holds the wheels of every CPU task and format: the default project's, and those
    of an image-classification project with a state_dict (Pillow, python-multipart and
    safetensors on top of the rest).
    """
    from generator.harness import wheelhouse as wh
    from generator.harness.project import load_project

    WHEELHOUSE_CACHE.mkdir(parents=True, exist_ok=True)
    ignore = WHEELHOUSE_CACHE.parent / ".gitignore"
    if WHEELHOUSE_CACHE.parent != REPO_ROOT and not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")  # the cache never lands in a commit
    target = wh.probe_target(
        docker_client, standin_images["python"], "3.11", {"io.servegen.run": "wheelhouse"}
    )
    for answers in ({}, {"task": "image-classification"}):
        rendered = render_default(tmp_path_factory.mktemp("wheels-for"), **answers)
        wh.fill_auto(load_project(rendered), target, WHEELHOUSE_CACHE)
    yield WHEELHOUSE_CACHE


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """An empty folder to put fake executables in (used as the whole PATH)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder
