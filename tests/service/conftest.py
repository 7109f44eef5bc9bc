"""Fixtures of the service tests: rendered projects, their venvs, a MySQL server.

``mysql_url`` is SERVEGEN_TEST_MYSQL_URL (or TEST_MYSQL_URL) when set; otherwise a
container of the MySQL stand-in image, published on 127.0.0.1 and removed afterwards.
Without an engine or image it is None locally (the generated project's database tests
then skip, with the reason), and a failure under SERVEGEN_REQUIRE_DOCKER=1 (the rule of
``docker_client``).
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_helpers import PROJECTS, render, venv_for

MYSQL_LABEL = "servegen.test"


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every project of ``PROJECTS``, rendered once per session."""
    return {
        name: render(answers, tmp_path_factory.mktemp(name)) for name, answers in PROJECTS.items()
    }


@pytest.fixture(scope="session")
def project_venv(projects: dict[str, Path]) -> dict[str, Path]:
    """A venv per project, from its pinned requirements (shared when they are equal)."""
    return {name: venv_for(path) for name, path in projects.items()}


def _wait_mysql(container: Any, user: str, password: str, database: str) -> None:
    """Wait until the user can log in over TCP (not only the init-time server)."""
    deadline = time.monotonic() + 120
    while True:
        code, output = container.exec_run(
            ["mysql", "-h", "127.0.0.1", "-u", user, f"-p{password}", database, "-e", "SELECT 1"]
        )
        if code == 0:
            return
        container.reload()
        if container.status != "running" or time.monotonic() > deadline:
            logs = container.logs(tail=30).decode(errors="replace")
            raise AssertionError(f"MySQL stand-in never accepted logins: {output!r}\n{logs}")
        time.sleep(1)


@pytest.fixture(scope="session")
def mysql_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """URL of a MySQL-protocol server for the generated project's database tests."""
    from_env = os.environ.get("SERVEGEN_TEST_MYSQL_URL") or os.environ.get("TEST_MYSQL_URL")
    if from_env:
        yield from_env
        return
    try:
        client = request.getfixturevalue("docker_client")
        images = request.getfixturevalue("standin_images")
    except pytest.skip.Exception:
        yield None  # no engine or image here: the database tests skip, saying why
        return
    user, database = "svc", "svc_test"
    password = secrets.token_urlsafe(16)
    container = client.containers.run(
        images["mysql"],
        detach=True,
        name=f"servegen-service-mysql-{uuid.uuid4().hex[:8]}",
        labels={MYSQL_LABEL: "service"},
        environment={
            "MYSQL_ROOT_PASSWORD": secrets.token_urlsafe(16),
            "MYSQL_DATABASE": database,
            "MYSQL_USER": user,
            "MYSQL_PASSWORD": password,
        },
        ports={"3306/tcp": ("127.0.0.1", None)},
    )
    try:
        _wait_mysql(container, user, password, database)
        container.reload()
        port = container.ports["3306/tcp"][0]["HostPort"]
        yield f"mysql+pymysql://{user}:{password}@127.0.0.1:{port}/{database}"
    finally:
        container.remove(force=True, v=True)
