"""The run's containers on the engine: found by compose service, their port, their log.

Compose labels every container it makes with its project and service; the harness finds
them through those labels with the Docker SDK, whether they run, exited or crash-loop.
"""

from __future__ import annotations

from typing import Any

from generator.errors import SmokeFailed
from generator.harness.overlay import APP, PROXY
from generator.harness.report import LOG_TAIL_LINES

_PROJECT = "com.docker.compose.project"
_SERVICE = "com.docker.compose.service"
#: Set by ``compose run`` on its one-off containers (the drills start some).
_ONEOFF = "com.docker.compose.oneoff"


def project_containers(client: Any, compose_name: str) -> list[Any]:
    """Every container of the compose project, running or not."""
    return list(client.containers.list(all=True, filters={"label": f"{_PROJECT}={compose_name}"}))


def service_container(client: Any, compose_name: str, service: str) -> Any | None:
    """Return the container of one service of the project, or None.

    One-off containers of ``compose run`` carry the service's label too; they are not
    the service's container.
    """
    for container in project_containers(client, compose_name):
        labels = container.labels
        if labels.get(_SERVICE) == service and labels.get(_ONEOFF) != "True":
            return container
    return None


def front_container(client: Any, compose_name: str) -> tuple[str, Any | None]:
    """Return the published service's name and container: the proxy, else the app.

    A project's proxy listens on the app's port and holds the only published port; a
    project generated before it had one publishes the app itself.
    """
    proxy = service_container(client, compose_name, PROXY)
    if proxy is not None:
        return PROXY, proxy
    return APP, service_container(client, compose_name, APP)


def published_port(client: Any, compose_name: str, api_port: int) -> int:
    """Return the host port the engine gave ``api_port`` of the proxy (or the app)."""
    name, container = front_container(client, compose_name)
    if container is None:
        raise SmokeFailed(f"the {name} container was not created")
    port = host_port(container, api_port)
    if port is None:
        raise SmokeFailed(f"the {name}'s port {api_port} is not published")
    return port


def host_port(container: Any, port: int) -> int | None:
    """Return the host port the engine publishes ``port`` of a container on, or None."""
    container.reload()
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp")
    for binding in bindings or []:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def _blame_rank(container: Any) -> int:
    """Lower is more likely at fault: exited non-zero, unhealthy, the app, the rest."""
    state = container.attrs.get("State", {})
    if state.get("Status") == "exited" and state.get("ExitCode"):
        return 0
    if (state.get("Health") or {}).get("Status") == "unhealthy":
        return 1
    if container.labels.get(_SERVICE) == APP:
        return 2
    return 3


def failing_container_log(client: Any, compose_name: str) -> tuple[str, list[str]]:
    """Return the log tail of the container most likely at fault, and its name.

    A container that exited non-zero comes first (the downloader refusing a checksum), then
    an unhealthy or stopped one, then the app.
    """
    containers = project_containers(client, compose_name)
    if not containers:
        return "", []
    return log_tail(min(containers, key=_blame_rank))


def log_tail(container: Any) -> tuple[str, list[str]]:
    """Return ``("container <service>", its last lines)`` for a report's log tail."""
    service = container.labels.get(_SERVICE, container.name)
    try:
        raw = container.logs(tail=LOG_TAIL_LINES, stdout=True, stderr=True)
    except Exception as exc:  # removed meanwhile: say so instead of failing the report
        return f"container {service}", [f"(no log: {exc})"]
    return f"container {service}", raw.decode("utf-8", "replace").splitlines()
