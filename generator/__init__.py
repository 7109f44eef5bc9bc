"""servegen: scaffold PyTorch + FastAPI model-serving services and prove them."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path


def _version() -> str:
    # An installed distribution knows its version; a checkout used without installing
    # (``python -m generator`` from the repo) reads it from pyproject.toml.
    try:
        return metadata.version("servegen")
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            return str(data["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


__version__ = _version()
