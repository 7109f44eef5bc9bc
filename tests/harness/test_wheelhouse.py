"""Offline builds: platform tags for the image, linking a wheelhouse, reusing wheels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generator.errors import UsageError
from generator.harness.project import load_project
from generator.harness.wheelhouse import Target, fill_auto, link_dir, pip_download_argv


def test_platforms_cover_every_manylinux_tag_the_images_glibc_accepts() -> None:
    tags = Target("3.11", "x86_64", (2, 36)).platforms()
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_28_x86_64" in tags  # torch's CPU wheels
    assert tags[-2:] == ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    assert "manylinux_2_37_x86_64" not in tags


def test_pip_download_asks_for_the_images_python_not_the_hosts(project_dir: Path) -> None:
    project = load_project(project_dir)
    argv = pip_download_argv(
        project, project_dir / "wheels", Target("3.12", "aarch64", (2, 36)), False
    )
    assert argv[argv.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in argv
    assert "manylinux_2_17_aarch64" in argv
    assert "--no-index" not in argv
    offline = pip_download_argv(
        project, project_dir / "wheels", Target("3.12", "aarch64", (2, 36)), True
    )
    assert offline[-3:] == ["--no-index", "--find-links", str(project_dir / "wheels")]


def test_a_wheelhouse_dir_is_linked_into_the_project_without_copying(
    project_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "house"
    source.mkdir()
    (source / "demo-1.0-py3-none-any.whl").write_bytes(b"not really a wheel")
    (source / "notes.txt").write_text("ignored", encoding="utf-8")
    project = load_project(project_dir)
    figures = link_dir(project, source)
    linked = project_dir / "wheels" / "demo-1.0-py3-none-any.whl"
    assert figures["added"] == 1
    assert figures["wheels"] == 1
    assert os.stat(linked).st_ino == os.stat(source / "demo-1.0-py3-none-any.whl").st_ino
    assert not (project_dir / "wheels" / "notes.txt").exists()
    assert link_dir(project, source)["added"] == 0  # a second run reuses what is there


def test_a_wheelhouse_that_is_not_a_folder_or_has_no_wheels_is_a_usage_error(
    project_dir: Path, tmp_path: Path
) -> None:
    project = load_project(project_dir)
    with pytest.raises(UsageError, match="not a directory"):
        link_dir(project, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"no \.whl files"):
        link_dir(project, tmp_path / "empty")


@pytest.mark.docker
@pytest.mark.slow
def test_auto_reuses_a_complete_wheelhouse_without_an_index(
    project_dir: Path, wheelhouse: Path
) -> None:
    """``--wheelhouse auto`` on a project whose wheels/ is complete asks no index."""
    project = load_project(project_dir)
    link_dir(project, wheelhouse)
    figures = fill_auto(project, Target("3.11", "x86_64", (2, 36)))
    assert figures["source"] == "auto (reused)"
    assert figures["wheels"] >= 10
