"""Drill: a model whose bytes do not match its sha256 is never served.

Two of the stack's own services run once more, each told a wrong ``MODEL_SHA256``:

- the downloader (``compose run --rm --no-deps``) fetches the demo model from the
  stack's model server into another file of the models volume: it must refuse the
  bytes with its checksum exit code (3) and leave nothing new in the folder;
- a one-off app container (``compose run --detach --no-deps``, published on an
  ephemeral port of 127.0.0.1) starts over the verified model already in the volume:
  its ``/ready`` must report state ``failed`` for the checksum, and ``/predict`` must
  never answer 200.

The one-off app is removed before the step ends; like everything the run makes, both
carry the run's label, so tear-down would sweep them anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import Any, TextIO

from generator.errors import SmokeFailed
from generator.harness import containers, probes, proc
from generator.harness.compose import ComposeRun
from generator.harness.context import RunContext
from generator.harness.drills import POLL_SECONDS, blaming, engine, ready_body, service
from generator.harness.overlay import APP, DOWNLOADER

#: The downloader's exit code for a checksum mismatch (the project's contract).
CHECKSUM_EXIT = 3
#: A well-formed sha256 that no demo model has.
WRONG_SHA256 = hashlib.sha256(b"servegen drill: not the model's bytes").hexdigest()
#: Where the refused download would have gone, in the models volume.
DRILL_MODEL_PATH = "/models/servegen-drill-refused.bin"
#: Seconds a one-off compose run may take.
RUN_TIMEOUT = 120.0

_LIST_MODELS = "import os; print('\\n'.join(sorted(os.listdir('/models'))) or '(empty)')"


def bad_checksum(ctx: RunContext, compose: ComposeRun, out: TextIO) -> dict[str, Any]:
    """Check that the downloader refuses a model failing its checksum, and the app too."""
    app = service(ctx, APP)
    before = _models_dir(app)
    figures = _downloader_refuses(compose, out)
    after = _models_dir(app)
    if after != before:
        new = sorted(set(after) - set(before))
        raise SmokeFailed(f"the refused download left files in /models: {', '.join(new)}")
    figures["models_dir"] = " ".join(after)
    figures.update(_app_refuses(ctx, compose, out))
    return figures


def _models_dir(app: Any) -> list[str]:
    """Return the names in the models volume, as the running app sees them."""
    code, output = engine(
        "list /models in the app container",
        lambda: app.exec_run(["python", "-c", _LIST_MODELS], demux=False),
    )
    text = (output or b"").decode("utf-8", "replace")
    if code != 0:
        raise SmokeFailed(f"cannot list /models in the app container ({proc.last_line(text)})")
    return text.split()


def _downloader_refuses(compose: ComposeRun, out: TextIO) -> dict[str, Any]:
    """Run the downloader with a wrong checksum; it must exit 3."""
    result = compose.run(
        "run",
        "--rm",
        "--no-deps",
        "--env",
        f"MODEL_SHA256={WRONG_SHA256}",
        "--env",
        f"MODEL_PATH={DRILL_MODEL_PATH}",
        DOWNLOADER,
        timeout=RUN_TIMEOUT,
    )
    out.write(f"   downloader with a wrong sha256 exited {result.returncode}\n")
    if result.returncode != CHECKSUM_EXIT:
        said = "did not finish" if result.timed_out else f"exited {result.returncode}"
        raise SmokeFailed(
            f"the downloader given a wrong sha256 {said}, not {CHECKSUM_EXIT} "
            "(a checksum mismatch)",
            log_tail=result.tail(),
            log_source=f"compose run {DOWNLOADER}",
        )
    return {"downloader_exit": result.returncode}


def _app_refuses(ctx: RunContext, compose: ComposeRun, out: TextIO) -> dict[str, Any]:
    """Start a one-off app with a wrong checksum; it must fail to start and never serve."""
    name = f"{compose.name}-drill-app"
    port = ctx.project.api_port
    started = time.monotonic()
    result = compose.run(
        "run",
        "--detach",
        "--no-deps",
        "--name",
        name,
        "--publish",
        f"127.0.0.1::{port}",
        "--env",
        f"MODEL_SHA256={WRONG_SHA256}",
        APP,
        timeout=RUN_TIMEOUT,
    )
    try:
        if not result.ok:
            raise SmokeFailed(
                f"compose run of a one-off app failed: {proc.last_line(result.lines)}",
                log_tail=result.tail(),
                log_source=f"compose run {APP}",
            )
        oneoff = engine("find the one-off app", lambda: ctx.env.client.containers.get(name))
        with blaming(oneoff):
            sample = ctx.project.sample_request.read_bytes()
            figures = _refused(oneoff, port, sample, started + ctx.options.ready_timeout)
        figures["app_failed_seconds"] = round(time.monotonic() - started, 1)
        out.write(f"   one-off app with a wrong sha256: {figures['app_state']}\n")
        return figures
    finally:
        _remove(ctx, name)


def _refused(oneoff: Any, port: int, sample: bytes, deadline: float) -> dict[str, Any]:
    """Wait for the one-off app to say it failed (or to exit); it must never serve.

    Once it says so, the project's sample request must not get a 200 from it.
    """
    while True:
        host_port = engine("inspect the one-off app", lambda: containers.host_port(oneoff, port))
        state = oneoff.attrs.get("State", {})
        if not state.get("Running"):
            if not state.get("ExitCode"):
                raise SmokeFailed("the app given a wrong sha256 exited with status 0")
            return {"app_state": f"exited {state.get('ExitCode')}"}
        url = f"http://127.0.0.1:{host_port}"
        body = ready_body(url) if host_port else None
        if body is not None and body.get("state") == "failed":
            error = str(body.get("error") or "")
            if "sha256" not in error.lower():
                raise SmokeFailed(f"the app failed for another reason than the sha256: {error}")
            status, _ = probes.post_json(url + "/predict", sample)
            if status == 200:
                raise SmokeFailed("the app given a wrong sha256 answered /predict with 200")
            return {"app_state": "failed", "predict_status": status}
        if body is not None and body.get("ready") is True:
            raise SmokeFailed("the app given a wrong sha256 became ready: it serves the model")
        if time.monotonic() > deadline:
            raise SmokeFailed("the app given a wrong sha256 never reported state failed")
        time.sleep(POLL_SECONDS)


def _remove(ctx: RunContext, name: str) -> None:
    """Remove the one-off app if it exists (tear-down's sweep would catch it too)."""
    # Never created, or gone already: nothing to remove.
    with contextlib.suppress(Exception):
        ctx.env.client.containers.get(name).remove(force=True, v=True)
