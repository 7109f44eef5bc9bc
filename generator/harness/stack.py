"""Start the stack and wait for the app: demo checksum, ``compose up``, port, readiness.

The ready wait is the harness's own (not ``up --wait``) so it can measure start-up
seconds from ``up`` to the first ``/ready`` 200, and stop early when the app dies.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from typing import Any, TextIO

from generator.errors import SmokeFailed
from generator.harness import proc
from generator.harness.compose import ComposeRun
from generator.harness.overlay import APP, RUN_LABEL
from generator.harness.report import LOG_TAIL_LINES

#: Restarts after which the app counts as crash-looping rather than slow to start.
CRASH_LOOP_RESTARTS = 3

_SHA256 = re.compile(r"\b[0-9a-f]{64}\b")


def demo_model_sha256(client: Any, image: str, run_id: str) -> str:
    """Make the demo model once in a throw-away container and return its sha256.

    The maker is deterministic, so ``model-server`` later serves the same bytes.
    """
    try:
        output = client.containers.run(
            image,
            ["scripts/make_demo_model.py", "--out", "/tmp/model.pt"],  # noqa: S108
            entrypoint=["python"],
            remove=True,
            network_disabled=True,
            labels={RUN_LABEL: run_id},
            stdout=True,
            stderr=False,  # the checksum is alone on stdout; the summary goes to stderr
        )
    except Exception as exc:
        lines = _error_lines(exc)
        raise SmokeFailed(
            "scripts/make_demo_model.py failed in the built image",
            log_tail=lines,
            log_source="make_demo_model.py",
        ) from None
    text = output.decode("utf-8", "replace")
    found = _SHA256.findall(text)
    if not found:
        raise SmokeFailed(
            "scripts/make_demo_model.py printed no sha256",
            log_tail=text.splitlines()[-LOG_TAIL_LINES:],
            log_source="make_demo_model.py",
        )
    return str(found[-1])


def _error_lines(exc: Exception) -> list[str]:
    stderr = getattr(exc, "stderr", None)
    if isinstance(stderr, bytes) and stderr:
        return stderr.decode("utf-8", "replace").splitlines()[-LOG_TAIL_LINES:]
    return [str(exc)]


def up(compose: ComposeRun, timeout: float, out: TextIO | None = None) -> list[str]:
    """``compose up -d`` without building (the image was just built), within ``timeout``.

    ``up`` itself waits for the dependencies' conditions (a healthy database, a completed
    download), so it is bounded by the same time the app has to become ready.
    """
    out = out if out is not None else sys.stderr
    status = proc.StatusLine("starting", out)
    try:
        result = compose.run(
            "up", "--detach", "--no-build", on_line=status, progress="plain", timeout=timeout
        )
    finally:
        status.close()
    if result.timed_out:
        raise SmokeFailed(
            f"docker compose up did not finish within {timeout:.0f} s",
            log_tail=result.tail(),
            log_source="docker compose up",
        )
    if not result.ok:
        raise SmokeFailed(
            f"docker compose up failed: {_last(result.lines)}",
            log_tail=result.tail(),
            log_source="docker compose up",
        )
    return result.lines


def _last(lines: list[str]) -> str:
    meaningful = [line.strip() for line in lines if line.strip()]
    return meaningful[-1] if meaningful else "no message"


def project_containers(client: Any, compose_name: str) -> list[Any]:
    """Every container of the compose project, running or not."""
    return list(
        client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={compose_name}"}
        )
    )


def service_container(client: Any, compose_name: str, service: str) -> Any | None:
    """Return the container of one service of the project, or None."""
    for container in project_containers(client, compose_name):
        if container.labels.get("com.docker.compose.service") == service:
            return container
    return None


def published_port(client: Any, compose_name: str, api_port: int) -> int:
    """Return the ephemeral host port the engine gave the app's ``api_port``."""
    container = service_container(client, compose_name, APP)
    if container is None:
        raise SmokeFailed("the app container was not created")
    container.reload()
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
        f"{api_port}/tcp"
    )
    for binding in bindings or []:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    raise SmokeFailed(f"the app's port {api_port} is not published")


def http_get(url: str, timeout: float = 5.0) -> tuple[int | None, bytes]:
    """Return the HTTP status and body of a GET; status None when nothing answers (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None, b""


def http_status(url: str, timeout: float = 5.0) -> int | None:
    """Return the HTTP status of a GET, or None when nothing answers (yet)."""
    return http_get(url, timeout)[0]


def failed_state(body: bytes) -> str | None:
    """Return the app's error when a ``/ready`` body says it failed to start, else None.

    The service reports ``{"state": "failed", "error": ...}`` when loading the model
    failed: it will not get ready by waiting, so the harness stops at once.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("state") == "failed":
        return str(data.get("error") or "no reason given")
    return None


def wait_ready(
    client: Any, compose_name: str, base_url: str, up_started: float, timeout: float
) -> dict[str, Any]:
    """Poll ``/health`` then ``/ready`` until 200; stop early if the app failed or stopped."""
    deadline = up_started + timeout
    figures: dict[str, Any] = {}
    for path, key in (("/health", "health_seconds"), ("/ready", "startup_seconds")):
        while True:
            status, _ = http_get(base_url + path)
            if status == 200:
                figures[key] = round(time.monotonic() - up_started, 1)
                break
            if status is not None:
                error = failed_state(http_get(base_url + "/ready")[1])
                if error is not None:
                    raise SmokeFailed(f"the app failed to start: {error}")
            _fail_if_app_stopped(client, compose_name)
            if time.monotonic() > deadline:
                said = f"last answer {status}" if status is not None else "no answer"
                raise SmokeFailed(f"GET {path} not 200 within {timeout:.0f} s ({said})")
            time.sleep(0.5)
    return figures


def _fail_if_app_stopped(client: Any, compose_name: str) -> None:
    container = service_container(client, compose_name, APP)
    if container is None:
        return
    container.reload()
    state = container.attrs.get("State", {})
    if state.get("Status") in ("exited", "dead"):
        raise SmokeFailed(f"the app container stopped (exit code {state.get('ExitCode')})")
    # The app restarts on failure (restart: unless-stopped): a crash loop never gets ready.
    if int(container.attrs.get("RestartCount") or 0) >= CRASH_LOOP_RESTARTS:
        raise SmokeFailed(
            f"the app container keeps crashing (restarted {CRASH_LOOP_RESTARTS} times)"
        )


def failing_container_log(client: Any, compose_name: str) -> tuple[str, list[str]]:
    """Return the log tail of the container most likely at fault, and its name.

    A container that exited non-zero comes first (the downloader refusing a checksum), then
    an unhealthy or stopped one, then the app.
    """
    containers = project_containers(client, compose_name)

    def rank(container: Any) -> int:
        state = container.attrs.get("State", {})
        if state.get("Status") == "exited" and state.get("ExitCode"):
            return 0
        if (state.get("Health") or {}).get("Status") == "unhealthy":
            return 1
        if container.labels.get("com.docker.compose.service") == APP:
            return 2
        return 3

    if not containers:
        return "", []
    culprit = min(containers, key=rank)
    service = culprit.labels.get("com.docker.compose.service", culprit.name)
    try:
        raw = culprit.logs(tail=LOG_TAIL_LINES, stdout=True, stderr=True)
    except Exception as exc:  # removed meanwhile: say so instead of failing the report
        return f"container {service}", [f"(no log: {exc})"]
    return f"container {service}", raw.decode("utf-8", "replace").splitlines()
