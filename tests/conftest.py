"""Fixtures shared by every test area.

Docker end-to-end tests ask for the ``docker_client`` fixture. Without an engine they
skip with the reason, except when ``SERVEGEN_REQUIRE_DOCKER=1`` (set by ``.ci/run``),
where a missing engine fails the test instead: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_stub import StubServer

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = REPO_ROOT / "templates" / "torch-fastapi"

#: Local stand-ins for registry images, built by ci/setup-engine.sh. Tests pass them
#: through the same override options users have; the generated defaults stay official.
STANDIN_PYTHON = os.environ.get("SERVEGEN_STANDIN_PYTHON", "servegen-ci/python:3.11-slim")
STANDIN_MYSQL = os.environ.get("SERVEGEN_STANDIN_MYSQL", "servegen-ci/mysql:8.4")
STANDIN_HAPROXY = os.environ.get("SERVEGEN_STANDIN_HAPROXY", "servegen-ci/haproxy:3.0")


def _require_docker() -> bool:
    return os.environ.get("SERVEGEN_REQUIRE_DOCKER") == "1"


def _unavailable(reason: str) -> None:
    if _require_docker():
        pytest.fail(f"Docker engine required (SERVEGEN_REQUIRE_DOCKER=1) but {reason}")
    pytest.skip(f"no Docker engine: {reason}")


@pytest.fixture
def http_stub() -> Iterator[StubServer]:
    """A small HTTP server on 127.0.0.1 that answers what the test sets."""
    with StubServer() as stub:
        yield stub


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A connected Docker SDK client, or a skip/fail with the reason."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a runtime dependency
        _unavailable(f"the docker SDK is not importable ({exc})")
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # any failure to reach the engine means "no engine"
        _unavailable(f"the engine does not answer ({exc.__class__.__name__}: {exc})")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def standin_images(docker_client: Any) -> dict[str, str]:
    """Names of the local stand-in images; skip/fail when they were not built."""
    import docker

    missing = []
    for name in (STANDIN_PYTHON, STANDIN_MYSQL, STANDIN_HAPROXY):
        try:
            docker_client.images.get(name)
        except docker.errors.ImageNotFound:
            missing.append(name)
    if missing:
        _unavailable(f"stand-in images missing: {', '.join(missing)} (run ci/setup-engine.sh)")
    return {"python": STANDIN_PYTHON, "mysql": STANDIN_MYSQL, "haproxy": STANDIN_HAPROXY}
