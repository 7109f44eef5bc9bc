"""Shared helpers of the generator tests: render, read trees, parse files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from generator.cli import app

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = REPO_ROOT / "templates" / "torch-fastapi"

#: Folders whose files differ by design between two renders of the same answers.
RANDOM_DIRS = ("secrets",)

runner = CliRunner()


def servegen(*args: str, cwd: Path | None = None, input: str | None = None) -> Any:
    """Run the servegen CLI in-process (from ``cwd``) and return the click Result."""
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, list(args), input=input)
    finally:
        os.chdir(old)


def set_args(answers: dict[str, Any]) -> list[str]:
    """Turn answers into ``--set`` arguments."""
    out: list[str] = []
    for key, value in answers.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        out += ["--set", f"{key}={value}"]
    return out


def render(answers: dict[str, Any], dest: Path) -> Path:
    """Render with servegen (no prompts) into ``dest``; fail the test on error."""
    result = servegen("new", str(dest), "--no-input", *set_args(answers))
    assert result.exit_code == 0, result.output
    return dest


@contextmanager
def private_home() -> Iterator[dict[str, str]]:
    """An environment for a cookiecutter process with a private, empty home.

    No user config (~/.cookiecutterrc) changes the defaults, and the replay file that
    cookiecutter writes stays out of the real home.
    """
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home}
        env.pop("COOKIECUTTER_CONFIG", None)
        yield env


def render_cookiecutter(
    answers: dict[str, Any], output_dir: Path, *, interactive: bool = False
) -> Path:
    """Render with plain cookiecutter in a separate process (no servegen imported).

    ``interactive`` types the answers into cookiecutter's own prompts (the way a user
    does; typed text is taken literally). Otherwise they go on the command line as
    extra context, which cookiecutter evaluates as Jinja: only plain values then.
    """
    command = [sys.executable, "-m", "cookiecutter", "-o", str(output_dir), str(TEMPLATE_DIR)]
    stdin = None
    if interactive:
        spec = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
        lines = []
        for key, raw in spec.items():
            if key.startswith("_"):
                continue
            value = answers.get(key)
            if value is None:
                lines.append("")
            elif isinstance(raw, list):
                lines.append(str(raw.index(value) + 1))
            elif isinstance(value, bool):
                lines.append("yes" if value else "no")
            else:
                assert "\n" not in str(value), "a prompt answer is one line"
                lines.append(str(value))
        stdin = "\n".join(lines) + "\n"
    else:
        command.insert(3, "--no-input")
        for key, value in answers.items():
            if isinstance(value, bool):
                value = "yes" if value else "no"
            command.append(f"{key}={value}")
    with private_home() as env:
        out = subprocess.run(
            command, input=stdin, capture_output=True, text=True, cwd=output_dir, env=env
        )
    assert out.returncode == 0, out.stderr
    (project,) = [p for p in output_dir.iterdir() if p.is_dir()]
    return project


def tree(root: Path, *, skip: tuple[str, ...] = RANDOM_DIRS) -> dict[str, bytes]:
    """Map every file below ``root`` (POSIX relative path) to its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in skip or not path.is_file():
            continue
        out[rel] = path.read_bytes()
    return out


def parse(path: Path) -> Any:
    """Parse a TOML, YAML or JSON file by its suffix (None for other files)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix in (".yml", ".yaml"):
        return list(yaml.safe_load_all(text))
    if path.suffix == ".json":
        return json.loads(text)
    return None


def strings_in(data: Any) -> list[str]:
    """Every string value (and key) found in parsed data."""
    found: list[str] = []
    if isinstance(data, str):
        found.append(data)
    elif isinstance(data, dict):
        for key, value in data.items():
            found += strings_in(key) + strings_in(value)
    elif isinstance(data, list):
        for value in data:
            found += strings_in(value)
    return found
