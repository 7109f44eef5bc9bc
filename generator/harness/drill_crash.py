"""Drill ``app-crash``: the app's main process dies; the restart policy brings it back.

The process is killed with SIGKILL as a crash would kill it (see :func:`kill_process`
for why not with ``docker kill``), then the drill times the engine's restart and the
app's way back to ``/ready`` 200 on the same published port (the proxy's, when the
project has one: it stays up and sends requests to the app again once the app's
``/ready`` answers), and sends one ``/predict``.
"""

from __future__ import annotations

import time
from typing import Any, TextIO
from urllib.parse import urlsplit

from generator.errors import SmokeFailed
from generator.harness import containers, loopback, probes
from generator.harness.context import RunContext
from generator.harness.drills import POLL_SECONDS, blaming, engine, service
from generator.harness.overlay import APP


def app_crash(ctx: RunContext, url: str, out: TextIO) -> dict[str, Any]:
    """SIGKILL the app's main process; the restart policy must bring it back to ``/ready``."""
    app = service(ctx, APP)
    with blaming(app):
        engine("inspect the app container", app.reload)
        pid = int(app.attrs.get("State", {}).get("Pid") or 0)
        restarts = int(app.attrs.get("RestartCount") or 0)
        policy = (app.attrs.get("HostConfig", {}).get("RestartPolicy") or {}).get("Name") or "no"
        if not pid:
            raise SmokeFailed("the app container has no running process to kill")
        kill_process(ctx, pid)
        killed = time.monotonic()
        out.write(f"   app process killed (SIGKILL to pid {pid} on the host)\n")
        restarted = _wait_restarted(app, restarts, policy, killed + ctx.options.ready_timeout)
        ready = _wait_ready(url, killed + ctx.options.ready_timeout)
        port = engine(
            "inspect the published container",
            lambda: containers.published_port(
                ctx.env.client, ctx.compose.name, ctx.project.api_port
            ),
        )
        if port != urlsplit(url).port:
            raise SmokeFailed(f"the app came back on another port ({port}, was {url})")
        status, _ = probes.post_json(url + "/predict", ctx.project.sample_request.read_bytes())
        if status != 200:
            raise SmokeFailed(f"POST /predict answered {status} after the restart")
    return {
        "restart_policy": policy,
        "restarted_seconds": round(restarted - killed, 1),
        "ready_seconds": round(ready - killed, 1),
        "restarts": int(app.attrs.get("RestartCount") or 0),
        "port": port,
        "predict_status": status,
    }


def kill_process(ctx: RunContext, pid: int) -> None:
    """SIGKILL a container's main process as a crash would, not as a stop would.

    ``docker kill`` records the container as stopped by hand, and then the restart
    policy ``unless-stopped`` leaves it stopped (measured on Docker 20.10). From inside
    the container PID 1 cannot be killed: the kernel drops signals from its own PID
    namespace that it has no handler for, SIGKILL included. So a throw-away container
    in the engine host's PID namespace (``pid_mode=host``) sends the signal, with root
    and only the KILL capability: the engine sees the process die by itself.
    Ref: https://docs.docker.com/engine/containers/start-containers-automatically/
    Ref: https://man7.org/linux/man-pages/man7/pid_namespaces.7.html
    """
    code = f"import os, signal; os.kill({int(pid)}, signal.SIGKILL)"
    engine(
        "kill the app's process",
        lambda: ctx.env.client.containers.run(
            ctx.app_image,
            ["-c", code],
            entrypoint=["python"],
            user="0",
            pid_mode="host",
            cap_drop=["ALL"],
            cap_add=["KILL"],
            network_disabled=True,
            read_only=True,
            remove=True,
            labels=ctx.labels,
        ),
    )


def _wait_restarted(app: Any, restarts: int, policy: str, deadline: float) -> float:
    """Wait until the engine has restarted the app; return when it runs again."""
    while True:
        engine("inspect the app container", app.reload)
        state = app.attrs.get("State", {})
        if int(app.attrs.get("RestartCount") or 0) > restarts and state.get("Running"):
            return time.monotonic()
        stopped = state.get("Status") in ("exited", "dead") and not state.get("Restarting")
        if stopped and policy in ("no", ""):
            raise SmokeFailed("the app container has no restart policy: it stayed down")
        if time.monotonic() > deadline:
            raise SmokeFailed(
                f"the restart policy ({policy}) did not bring the app back "
                f"(state {state.get('Status')}, exit code {state.get('ExitCode')})"
            )
        time.sleep(POLL_SECONDS / 2)


def _wait_ready(url: str, deadline: float) -> float:
    """Wait for ``/ready`` 200 at ``url``; return when it came."""
    while True:
        try:
            status, _ = loopback.request(url + "/ready")
        except loopback.NoAnswer:
            status = None
        if status == 200:
            return time.monotonic()
        if time.monotonic() > deadline:
            said = f"last answer {status}" if status is not None else "no answer"
            raise SmokeFailed(f"the restarted app did not get ready ({said})")
        time.sleep(POLL_SECONDS / 2)
