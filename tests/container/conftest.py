"""Variants of the container tests and a per-session cache of rendered projects.

The options that change the container files are multiplied: Python version (base
image), accelerator (wheel index, GPU reservation) and batching; the model format (the
trim and the build's self-test) and the task (Pillow) are cycled through them; one
more variant carries an older torch, another port and a project name full of
punctuation.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from container_helpers import render

PYTHONS = ("3.11", "3.12", "3.13")
ACCELERATORS = ("cpu", "cuda")
BATCHING = (True, False)
FORMATS = ("state_dict", "torchscript", "export")
TASKS = ("tensor", "image-classification")


def variants() -> list[tuple[str, dict[str, Any]]]:
    """Return (test id, answers) for every variant."""
    out = []
    combos = itertools.product(PYTHONS, ACCELERATORS, BATCHING)
    for index, (python, accel, batching) in enumerate(combos):
        fmt, task = FORMATS[index % 3], TASKS[index // 3 % 2]
        ident = f"py{python}-{accel}-{'batch' if batching else 'nobatch'}-{task}-{fmt}"
        answers = {"python_version": python, "accelerator": accel, "batching": batching}
        out.append((ident, {**answers, "model_format": fmt, "task": task}))
    out.append(
        (
            "torch2.5.1-cuda-port9000-oddname",
            {
                "project_name": "Fraud \"Scorer\": #2 'beta' & more",
                "python_version": "3.12",
                "torch_version": "2.5.1",
                "accelerator": "cuda",
                "api_port": "9000",
                "batching": False,
            },
        )
    )
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``variant`` with every variant."""
    if "variant" in metafunc.fixturenames:
        cases = variants()
        metafunc.parametrize("variant", [a for _, a in cases], ids=[i for i, _ in cases])


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], Path]:
    """Render answers once per session; return the project folder (treat as read-only)."""
    cache: dict[str, Path] = {}

    def get(answers: dict[str, Any]) -> Path:
        key = repr(sorted(answers.items()))
        if key not in cache:
            cache[key] = render(answers, tmp_path_factory.mktemp("render"))
        return cache[key]

    return get


@pytest.fixture
def project(variant: dict[str, Any], rendered: Callable[[dict[str, Any]], Path]) -> Path:
    """The rendered project of the current variant (shared, do not modify)."""
    return rendered(variant)


@pytest.fixture
def project_copy(project: Path, tmp_path: Path) -> Path:
    """A private copy of the current variant's project, free to modify."""
    dest = tmp_path / project.name
    shutil.copytree(project, dest, symlinks=True)
    return dest
