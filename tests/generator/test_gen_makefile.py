"""The generated project's Makefile and docs, run with the real ``make`` (no venv built).

A fake ``.venv`` (its stamp file newer than the requirements) lets the targets that
depend on ``venv`` run without installing anything; the interpreter is this one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gen_helpers import render

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render({"python_version": "3.12"}, tmp_path_factory.mktemp("make") / "svc")


def _make(project: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path if path is not None else os.environ["PATH"]}
    env.pop("MAKEFLAGS", None)
    return subprocess.run(
        [str(MAKE), "--no-print-directory", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_shows_the_real_model_path(project: Path) -> None:
    result = _make(project, "help")
    assert result.returncode == 0, result.stderr
    assert "$(" not in result.stdout
    assert "write the demo model to models/model.safetensors" in result.stdout


def test_python_falls_back_to_python3_and_checks_its_version(project: Path, tmp_path: Path) -> None:
    # Only "python3" on PATH (no python3.12): the Makefile takes it, and says plainly
    # when it is not the project's Python.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    path = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"
    result = _make(project, "-n", "venv", path=path)
    assert f"{bin_dir}/python3 -m venv" in result.stdout, result.stdout + result.stderr
    checked = _make(project, "venv", f"VENV={tmp_path / 'v'}", path=path)
    if sys.version_info[:2] != (3, 12):
        assert checked.returncode != 0
        assert "is not Python 3.12; run: make venv PYTHON=" in checked.stderr


def _fake_venv(project: Path, where: Path) -> Path:
    (where / "bin").mkdir(parents=True)
    (where / "bin" / "python").symlink_to(sys.executable)
    stamp = where / ".installed"
    stamp.touch()
    newer = max((project / n).stat().st_mtime for n in ("requirements.txt", "requirements-dev.txt"))
    os.utime(stamp, (newer + 10, newer + 10))
    return where


def test_test_mysql_needs_its_url(project: Path, tmp_path: Path) -> None:
    venv = _fake_venv(project, tmp_path / "venv")
    env_url = os.environ.pop("TEST_MYSQL_URL", None)
    try:
        result = _make(project, "test-mysql", f"VENV={venv}")
    finally:
        if env_url is not None:
            os.environ["TEST_MYSQL_URL"] = env_url
    assert result.returncode != 0
    assert "error: set TEST_MYSQL_URL" in result.stderr


def test_download_reads_the_env_file(project: Path, tmp_path: Path) -> None:
    payload = os.urandom(2048)
    source = tmp_path / "published.bin"
    source.write_bytes(payload)
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    (copy / ".env").write_text(
        f"MODEL_URL={source.as_uri()}\nMODEL_SHA256={hashlib.sha256(payload).hexdigest()}\n",
        encoding="utf-8",
    )
    env_clean = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
    result = subprocess.run(
        [str(MAKE), "--no-print-directory", "download", f"PYTHON={sys.executable}"],
        cwd=copy,
        env=env_clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (copy / "models" / "model.safetensors").read_bytes() == payload


def test_the_readme_and_the_containers_doc_start_compose_alike(project: Path) -> None:
    # Every `docker compose ... up` command line of the README is one the containers
    # doc gives too, flags and all.
    up = re.compile(r"(?m)^\s*(docker compose (?:-f \S+ )*up[^\n#]*?)\s*(?:#.*)?$")
    readme = set(up.findall((project / "README.md").read_text(encoding="utf-8")))
    containers = set(up.findall((project / "docs" / "containers.md").read_text(encoding="utf-8")))
    assert readme and readme <= containers, (readme, containers)
