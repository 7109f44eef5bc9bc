"""Replicas on one host: ``docker compose up --scale app=2`` behind the project's proxy.

The rendered project's own compose files (with ``compose.demo.yaml``, as ``make demo``)
run with the local stand-in images: two app replicas, the proxy publishing the only
port on 127.0.0.1. Requests through that port must reach both replicas (each one's own
``/metrics`` counts its predictions and the prediction log rows it wrote), keep or get
an ``X-Request-ID``, and every prediction must have its row in MySQL. The stack, its
volumes and its image are removed afterwards, and the test checks that they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from generator.harness import loopback, promtext
from generator.harness import wheelhouse as wh
from generator.harness.project import load_project

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPLICAS = 2
PREDICTIONS = 12
_PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True)
class Stack:
    """A running stack: its compose command line, environment and published address."""

    project: Path
    compose: tuple[str, ...]
    env: dict[str, str]
    name: str
    url: str

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run one compose command of the stack; fail the test with its output on error."""
        done = subprocess.run(
            [*self.compose, *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"compose {' '.join(args)}:\n{done.stderr[-4000:]}"
        return done


@pytest.fixture
def stack(
    project_dir: Path,
    compose_command: tuple[str, ...],
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
) -> Iterator[Stack]:
    """The demo stack with two app replicas, up and waited for; torn down afterwards."""
    wh.link_dir(load_project(project_dir), wheelhouse)
    name = f"sgreplicas-{uuid.uuid4().hex[:8]}"
    port = loopback.free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")},
        "COMPOSE_PROJECT_NAME": name,
        "COMPOSE_FILE": os.pathsep.join(("compose.yaml", "compose.demo.yaml")),
        "APP_IMAGE": f"{name}:test",
        "APP_PORT": str(port),
        "BASE_IMAGE": standin_images["python"],
        "MYSQL_IMAGE": standin_images["mysql"],
        "PROXY_IMAGE": standin_images["haproxy"],
        "BUILD_PIP_NO_INDEX": "1",
    }
    running = Stack(project_dir, compose_command, env, name, f"http://127.0.0.1:{port}")
    try:
        running.run("build")
        # --wait: the replicas are healthy, and so is the proxy (it has a ready replica).
        running.run(
            "up", "--detach", "--wait", "--wait-timeout", "300", "--scale", f"app={REPLICAS}"
        )
        yield running
    finally:
        subprocess.run(
            [*compose_command, "down", "--volumes", "--remove-orphans", "--timeout", "10"],
            cwd=project_dir,
            env=env,
            capture_output=True,
            check=False,
            timeout=300,
        )
        # Never built, or gone: the leftover check below says whether anything remains.
        with contextlib.suppress(Exception):
            docker_client.images.remove(env["APP_IMAGE"], force=True)
    flt = {"label": f"{_PROJECT_LABEL}={name}"}
    assert docker_client.containers.list(all=True, filters=flt) == []
    assert docker_client.networks.list(filters=flt) == []
    assert docker_client.volumes.list(filters=flt) == []
    assert docker_client.images.list(name=env["APP_IMAGE"]) == []


def _containers(client: Any, stack: Stack, service: str) -> list[Any]:
    found = client.containers.list(
        filters={
            "label": [f"{_PROJECT_LABEL}={stack.name}", f"com.docker.compose.service={service}"]
        }
    )
    return sorted(found, key=lambda c: c.name)


def _predict(url: str, body: bytes, request_id: str | None) -> tuple[int, dict[str, Any], str]:
    headers = {"content-type": "application/json"}
    if request_id is not None:
        headers["x-request-id"] = request_id
    request = urllib.request.Request(url + "/predict", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, json.loads(answer.read()), answer.headers["x-request-id"]


def _metrics_inside(container: Any, port: int) -> dict[str, float]:
    """One replica's own /metrics, read from inside its container (it publishes nothing)."""
    code = (
        "import urllib.request as u; "
        f"print(u.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode())"
    )
    exit_code, output = container.exec_run(["python", "-c", code])
    assert exit_code == 0, output
    return promtext.parse(output.decode("utf-8"))


def _rows(db: Any, database: str, request_ids: list[str]) -> dict[str, str]:
    """request_id -> status of the prediction log rows with those ids."""
    quoted = ",".join(f"'{rid}'" for rid in request_ids)  # ids are [A-Za-z0-9-] only
    sql = f"SELECT request_id, status FROM predictions WHERE request_id IN ({quoted})"
    script = (
        f'MYSQL_PWD="$(cat /run/secrets/db_root_password)" mysql -uroot -N -B {database} -e "{sql}"'
    )
    exit_code, output = db.exec_run(["sh", "-c", script])
    assert exit_code == 0, output
    pairs = (line.split("\t") for line in output.decode("utf-8").splitlines() if line)
    return {rid: status for rid, status in pairs}


def test_two_replicas_behind_the_proxy_share_requests_and_the_prediction_log(
    stack: Stack, docker_client: Any
) -> None:
    project = load_project(stack.project)
    apps = _containers(docker_client, stack, "app")
    assert len(apps) == REPLICAS
    # Only the proxy is published, on loopback; the replicas publish nothing.
    (proxy,) = _containers(docker_client, stack, "proxy")
    bindings = proxy.attrs["NetworkSettings"]["Ports"][f"{project.api_port}/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
    for app in apps:
        assert not any(app.attrs["NetworkSettings"]["Ports"].values()), app.name

    body = project.sample_request.read_bytes()
    sent = [f"replicas-{uuid.uuid4().hex[:12]}-{n}" for n in range(PREDICTIONS)]
    for request_id in sent:
        status, answer, echoed = _predict(stack.url, body, request_id)
        assert status == 200
        # The client's id is kept by the proxy, and so by the app and its answer.
        assert echoed == answer["request_id"] == request_id
    # Without an id the proxy makes one, which the app keeps.
    status, answer, made = _predict(stack.url, body, None)
    assert status == 200 and made == answer["request_id"] and len(made) == 36
    sent.append(made)

    # Each replica answered some of the predictions and wrote their rows itself.
    predicted = {}
    deadline = time.monotonic() + 60
    while True:
        per_replica = [_metrics_inside(app, project.api_port) for app in apps]
        predicted = {
            app.name: metrics.get(
                'http_requests_total{method="POST",route="/predict",status="200"}', 0
            )
            for app, metrics in zip(apps, per_replica, strict=True)
        }
        written = [metrics.get("db_rows_written_total", 0) for metrics in per_replica]
        if sum(written) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sum(predicted.values()) == len(sent), predicted
    assert all(count > 0 for count in predicted.values()), predicted
    assert all(count > 0 for count in written), written
    assert sum(written) == len(sent), written

    # Every prediction, whichever replica made it, has its row in the one database.
    (db,) = _containers(docker_client, stack, "db")
    assert _rows(db, project.db_name, sent) == dict.fromkeys(sent, "ok")
