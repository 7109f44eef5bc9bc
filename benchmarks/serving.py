"""Serving benchmark: /predict against the /health floor, batching on and off, two models.

The app image that the harness built runs as one container per configuration (model x
batching), published on an ephemeral port of 127.0.0.1, with the prediction log going
to a MySQL-protocol database container on a private network (the production path)
when one is given. The load generator runs in its own process on the host
(:func:`run_load`), so requests cross the engine's port publishing
exactly as a user's would; both the floor and /predict pay that cost alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import dockerutil
from benchmarks.harness_adapter import last_line, loopback
from benchmarks.loadgen import LoadError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadPlan:
    """How hard and how long each load point runs."""

    levels: tuple[int, ...] = (1, 8, 32, 64)
    duration: float = 4.0
    warmup: float = 1.0
    max_requests: int = 50_000
    timeout: float = 30.0
    #: CPUs of the server container (``docker run --cpuset-cpus``); None = all
    server_cpuset: str | None = None
    #: CPUs of the load generator process; None = all
    client_cpus: frozenset[int] | None = None
    #: At this level /predict and /health are measured in turn, ``rounds`` times each,
    #: and the median round of each is kept: the targets' ratios compare these two, and
    #: alternating spreads any drift of the machine over both sides alike.
    paired_level: int = 32
    rounds: int = 3

    def describe(self) -> str:
        """Where the server and the client ran, for the report."""
        if self.server_cpuset is None:
            return "server and load generator share all CPUs"
        cpus = ",".join(str(c) for c in sorted(self.client_cpus or ()))
        return f"server container pinned to CPU {self.server_cpuset}, load generator to CPU {cpus}"


@dataclass(frozen=True)
class ModelSpec:
    """A model file in the shared model folder and how it was made."""

    name: str  # "tiny" or "heavy"
    filename: str
    sha256: str
    maker_args: tuple[str, ...]


def predict_body(input_shape: list[int], items: int = 1) -> bytes:
    """A ``POST /predict`` body of ``items`` deterministic items of ``input_shape``."""

    def item(shape: list[int], offset: int) -> Any:
        if not shape:
            return round(((offset * 37) % 200) / 100.0 - 1.0, 2)
        return [item(shape[1:], offset * shape[0] + i) for i in range(shape[0])]

    return json.dumps({"inputs": [item(list(input_shape), k) for k in range(items)]}).encode()


def _model_info(app: dockerutil.AppContainer) -> dict[str, Any]:
    status, body = loopback.request(app.url("/model"), timeout=5)
    if status != 200:
        raise RuntimeError(f"GET /model answered {status}")
    info: dict[str, Any] = json.loads(body)
    return info


def _warm(app: dockerutil.AppContainer, body: bytes, count: int = 20) -> None:
    for _ in range(count):
        status, answer = loopback.request(app.url("/predict"), body, timeout=10)
        if status != 200:
            raise RuntimeError(f"POST /predict answered {status}: {answer[:200]!r}")


def run_load(
    url: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    concurrency: int = 1,
    max_requests: int = 10_000,
    duration: float = 5.0,
    warmup: float = 0.5,
    timeout: float = 30.0,
    cpus: set[int] | None = None,
    rate: float | None = None,
) -> dict[str, Any]:
    """Run the load generator in a separate Python process and return its result.

    ``cpus`` pins that process to these CPUs (Linux), so that it does not compete with
    a server pinned elsewhere. ``rate`` switches to the fixed-rate (open-loop) mode:
    that many requests per second on up to ``concurrency`` connections.

    A separate process keeps the client's CPU work off the server's interpreter when the
    server runs on the host, and is the same set-up when it runs in a container.
    """
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        url,
        "--method",
        method,
        "--concurrency",
        str(concurrency),
        "--max-requests",
        str(max_requests),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--timeout",
        str(timeout),
        "--body-stdin",
    ]
    if cpus:
        cmd += ["--cpus", ",".join(str(c) for c in sorted(cpus))]
    if rate is not None:
        cmd += ["--rate", str(rate)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            cmd,
            input=body,
            capture_output=True,
            cwd=REPO_ROOT,
            env=env,
            timeout=warmup + duration + timeout + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"load generator did not finish within {exc.timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise LoadError(f"load generator failed: {last_line(proc.stderr.decode(errors='replace'))}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def load_point(
    app: dockerutil.AppContainer,
    *,
    model: str,
    batching: str,
    endpoint: str,
    concurrency: int,
    plan: LoadPlan,
    body: bytes = b"",
) -> dict[str, Any]:
    """Run one load point and return the load generator's figures, labelled."""
    label = {
        "model": model,
        "batching": batching,
        "endpoint": endpoint,
        "concurrency": concurrency,
        "where": "container",
    }
    method = "POST" if endpoint == "/predict" else "GET"
    try:
        result = run_load(
            app.url(endpoint),
            method=method,
            body=body,
            concurrency=concurrency,
            max_requests=plan.max_requests,
            duration=plan.duration,
            warmup=plan.warmup,
            timeout=plan.timeout,
            cpus=set(plan.client_cpus) if plan.client_cpus else None,
        )
    except LoadError as exc:
        return {**label, "error": str(exc)}
    return {**label, **result}


def run_configuration(
    client: Any,
    image: str,
    *,
    model: ModelSpec,
    batching: bool,
    base_env: dict[str, str],
    model_dir: Path,
    container_port: int,
    run_id: str,
    network: str | None,
    plan: LoadPlan,
    health_levels: tuple[int, ...],
    progress: Callable[[str], None],
    body: bytes | None = None,
) -> list[dict[str, Any]]:
    """Start one app container and run every load point of one configuration.

    ``body`` is the ``/predict`` request (default: one tensor item of the model's input
    shape, from ``GET /model``).
    """
    env = {
        **base_env,
        "MODEL_PATH": f"/models/{model.filename}",
        "MODEL_SHA256": model.sha256,
        "BATCHING_ENABLED": "true" if batching else "false",
    }
    tag = "on" if batching else "off"
    progress(f"serving: {model.name} model, batching {tag}: starting the app")
    app = dockerutil.start_app(
        client,
        image,
        env=env,
        model_dir=model_dir,
        container_port=container_port,
        run_id=run_id,
        network=network,
        cpuset=plan.server_cpuset,
    )
    try:
        if body is None:
            info = _model_info(app)
            body = predict_body([int(x) for x in info.get("input_shape", [])])
        _warm(app, body)

        def measure(endpoint: str, level: int) -> dict[str, Any]:
            progress(f"serving: {model.name}, batching {tag}, {endpoint} x{level}")
            return load_point(
                app,
                model=model.name,
                batching=tag,
                endpoint=endpoint,
                concurrency=level,
                plan=plan,
                body=body if endpoint == "/predict" else b"",
            )

        points = measure_levels(measure, plan, health_levels)
        # Give the database writer a moment, then check the app survived the load.
        time.sleep(0.2)
        status, _ = loopback.request(app.url("/ready"), timeout=5)
        if status != 200:
            raise RuntimeError(f"/ready answered {status} after the load")
    finally:
        dockerutil.remove(app.container)
    return points


def measure_levels(
    measure: Callable[[str, int], dict[str, Any]],
    plan: LoadPlan,
    health_levels: tuple[int, ...],
) -> list[dict[str, Any]]:
    """Run ``/predict`` at every level of the plan and ``/health`` at ``health_levels``.

    At the plan's paired level (when both endpoints run there) the two alternate for
    ``plan.rounds`` rounds and the median round of each is kept.
    """
    points: list[dict[str, Any]] = []
    paired = plan.paired_level if plan.rounds > 1 else None
    for level in plan.levels:
        if level == paired and level in health_levels:
            rounds: dict[str, list[dict[str, Any]]] = {"/predict": [], "/health": []}
            for _ in range(plan.rounds):
                for endpoint, results in rounds.items():
                    results.append(measure(endpoint, level))
            points += [median_round(results) for results in rounds.values()]
        else:
            points.append(measure("/predict", level))
    for level in health_levels:
        if level != paired or level not in plan.levels:
            points.append(measure("/health", level))
    return points


def median_round(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The round of median throughput, with every round's throughput attached.

    A round that failed outright counts as zero throughput; when every round failed,
    the first failure is returned.
    """
    good = [r for r in results if not r.get("error")]
    if not good:
        return results[0]
    ranked = sorted(results, key=lambda r: 0.0 if r.get("error") else r["throughput_rps"])
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    if chosen.get("error"):  # the median is a failed round: say so, keep its labels
        return chosen
    chosen["rounds_rps"] = [0.0 if r.get("error") else r["throughput_rps"] for r in results]
    return chosen


def find_point(
    points: list[dict[str, Any]], model: str, batching: str, endpoint: str, concurrency: int
) -> dict[str, Any] | None:
    """Return the load point with these labels, when it ran without error."""
    for p in points:
        if (
            p.get("model") == model
            and p.get("batching") == batching
            and p.get("endpoint") == endpoint
            and p.get("concurrency") == concurrency
            and not p.get("error")
        ):
            return p
    return None
