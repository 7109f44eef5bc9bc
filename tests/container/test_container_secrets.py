"""The post-generation hook: per-project random database passwords in secrets/.

Renders go through cookiecutter's API, so the hook runs exactly as for a user: as a
separate process, with this process's environment and umask.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_helpers import TEMPLATE_DIR, render
from cookiecutter.exceptions import FailedHookException

NAMES = ("db_password.txt", "db_root_password.txt")
ENV_VARS = ("SERVEGEN_DB_PASSWORD", "SERVEGEN_DB_ROOT_PASSWORD")


@pytest.fixture(autouse=True)
def _no_supplied_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def cookiecutter_cli(*options: str) -> list[str]:
    """Plain cookiecutter in a separate process, so the hook's messages can be read."""
    return [sys.executable, "-m", "cookiecutter", "--no-input", *options, str(TEMPLATE_DIR)]


def read_secrets(project: Path) -> list[str]:
    return [(project / "secrets" / name).read_text(encoding="utf-8") for name in NAMES]


def test_each_project_gets_its_own_random_passwords(tmp_path: Path) -> None:
    first = read_secrets(render({}, tmp_path / "a"))
    second = read_secrets(render({}, tmp_path / "b"))
    for password in (*first, *second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", password), "token_urlsafe(32), no newline"
    assert len(set(first + second)) == 4, "no two passwords alike, across or within projects"


def test_modes_let_containers_read_but_not_other_host_users(
    tmp_path: Path, umask_077: None
) -> None:
    # Even under a strict umask the files must stay readable by the containers' users.
    project = render({}, tmp_path)
    folder = project / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in NAMES:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644
    assert not list(folder.glob(".*.tmp")), "no temporary file left behind"


def test_rendering_again_keeps_existing_passwords(tmp_path: Path) -> None:
    from cookiecutter.main import cookiecutter

    project = render({"api_port": "8000"}, tmp_path)
    before = read_secrets(project)
    cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context={"api_port": "9000"},
        output_dir=str(tmp_path),
        overwrite_if_exists=True,
    )
    assert "9000" in (project / "compose.yaml").read_text(encoding="utf-8")
    assert read_secrets(project) == before


def test_supplied_passwords_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVEGEN_DB_PASSWORD", "shared-user-Passw0rd")
    monkeypatch.setenv("SERVEGEN_DB_ROOT_PASSWORD", "shared-root-Passw0rd")
    project = render({}, tmp_path)
    assert read_secrets(project) == ["shared-user-Passw0rd", "shared-root-Passw0rd"]


def test_supplied_password_does_not_replace_an_existing_file(tmp_path: Path) -> None:
    project = render({}, tmp_path)
    before = read_secrets(project)
    env = {**os.environ, "SERVEGEN_DB_PASSWORD": "another-Passw0rd-value"}
    result = subprocess.run(
        cookiecutter_cli("-f", "-o", str(tmp_path)),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert read_secrets(project) == before
    assert "secrets/db_password.txt already exists and was kept" in result.stderr


@pytest.mark.parametrize(
    "value",
    ["short", "x" * 129, "has space in it!", "quote'in-the-middle", 'dollar$sign"quote'],
)
def test_unusable_supplied_password_fails_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SERVEGEN_DB_PASSWORD", value)
    with pytest.raises(FailedHookException):
        render({}, tmp_path)
    assert list(tmp_path.iterdir()) == [], "cookiecutter removes the half-made project"


def test_unusable_password_message_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "SERVEGEN_DB_ROOT_PASSWORD": "bad password with spaces"}
    result = subprocess.run(
        cookiecutter_cli("-o", str(tmp_path)),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: SERVEGEN_DB_ROOT_PASSWORD holds characters that are not allowed (' '); "
        "use letters, digits and - _ . ~ + = , : @ ^ * ! ? /"
    ]
    assert not any(tmp_path.iterdir())
