"""What the harness needs to know about a generated project, read from its files.

The harness edits none of the project's files; the one thing it writes into a project
is wheels, into ``wheels/``, when ``--wheelhouse`` asks for an offline build.

The answers recorded in ``.servegen-answers.yml`` (read by the generator's own loader)
give the slug, port and database name; a project rendered by an older template or
edited by hand falls back to the directory name, the template's derivations and the
contract's defaults (docs/architecture.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import UsageError
from generator.options import load_answers_file
from generator.template import load_template
from generator.update import ANSWERS_FILE

SAMPLE_REQUEST = Path("examples") / "predict_request.json"
#: The image of an image-classification project's sample request, sent as an upload too.
SAMPLE_IMAGE = Path("examples") / "image.jpg"
#: The compose file that adds the demo model server (``docker compose -f compose.yaml -f``).
DEMO_COMPOSE = "compose.demo.yaml"
REQUIRED_FILES = (
    "compose.yaml",
    DEMO_COMPOSE,
    "Dockerfile",
    "requirements.txt",
    str(SAMPLE_REQUEST),
)
SECRET_NAMES = ("db_password", "db_root_password")

_ARG_BASE = re.compile(r"^\s*ARG\s+BASE_IMAGE\s*=\s*(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Project:
    """A generated project on disk."""

    root: Path
    slug: str
    api_port: int
    db_name: str
    python_version: str
    default_base_image: str | None
    answers: dict[str, Any]

    @property
    def compose_file(self) -> Path:
        """The project's own compose file (never edited by the harness)."""
        return self.root / "compose.yaml"

    @property
    def demo_compose_file(self) -> Path:
        """The project's demo layer: a model server for the demo model, no .env needed."""
        return self.root / DEMO_COMPOSE

    @property
    def sample_request(self) -> Path:
        """The sample ``POST /predict`` body the project carries."""
        return self.root / SAMPLE_REQUEST

    @property
    def sample_upload(self) -> Path | None:
        """The sample image an image-classification project carries (None otherwise)."""
        path = self.root / SAMPLE_IMAGE
        if self.answers.get("task") != "image-classification" or not path.is_file():
            return None
        return path

    def missing_secrets(self) -> list[str]:
        """Secret names whose ``secrets/<name>.txt`` is absent (a fresh clone)."""
        return [n for n in SECRET_NAMES if not (self.root / "secrets" / f"{n}.txt").is_file()]


def load_project(root: Path) -> Project:
    """Read a project directory; a directory that is not a generated project is UsageError."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        raise UsageError(
            f"{root} does not look like a generated project (missing {', '.join(missing)})"
        )
    answers = _recorded_answers(root)
    try:
        json.loads((root / SAMPLE_REQUEST).read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise UsageError(f"{root / SAMPLE_REQUEST} is not valid JSON ({exc})") from None
    slug = str(answers.get("project_slug") or root.name)
    try:
        api_port = int(answers.get("api_port", 8000))
    except (TypeError, ValueError):
        raise UsageError(f"{ANSWERS_FILE}: api_port is not a number") from None
    package = str(answers.get("package_name") or _derive_package(slug))
    dockerfile = (root / "Dockerfile").read_text(encoding="utf-8")
    match = _ARG_BASE.search(dockerfile)
    return Project(
        root=root,
        slug=slug,
        api_port=api_port,
        db_name=str(answers.get("db_name") or package),
        python_version=str(answers.get("python_version") or "3.11"),
        default_base_image=match[1].strip("\"'") if match else None,
        answers=answers,
    )


def _recorded_answers(root: Path) -> dict[str, Any]:
    """Return the project's recorded answers (an empty mapping when it has none)."""
    path = root / ANSWERS_FILE
    return load_answers_file(path) if path.is_file() else {}


def _derive_package(slug: str) -> str:
    """Return the package name the template derives from ``slug`` (its rule, not a copy)."""
    derived: str = load_template().rules.derive_package(slug)
    return derived
