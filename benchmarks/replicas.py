"""Replicas behind the project's proxy: what more replicas give, and what the proxy costs.

``replicas`` (``--only replicas``), on the default project's image and its own
``proxy/haproxy.cfg``, run as compose runs them: app containers on a private network,
each answering to the name ``app`` (as compose names a service's replicas), and one
HAProxy container (``--proxy-image``) in front, the only one published on 127.0.0.1.

- **heavier model at 1, 2 and 4 replicas**: ``/predict`` throughput and p99 at 32
  clients through the proxy (batching on, prediction log on); the baseline is one
  replica through the same proxy. First every replica and the proxy get the server's
  CPUs (the serving section's placement), which says what replicas cost or gain on the
  same cores; then, where the run pins, 1 and 2 replicas with every CPU shared by all
  (replicas, proxy, database, load generator), each replica with ``TORCH_THREADS`` =
  CPUs / replicas as the project's README advises: what this machine gives.
- **the proxy's cost**: the tiny model with one replica, ``/predict`` and ``/health``
  through the proxy against the same container's own published port, alternating;
  and the serving section's tiny-model target with both sides through the proxy.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import dockerutil, serving
from benchmarks.harness_adapter import loopback
from benchmarks.report import Row, Target
from benchmarks.serving import ModelSpec

if TYPE_CHECKING:
    from benchmarks.engine import EngineRun

SECTION = "Replicas behind the proxy (32 concurrent clients)"
#: The name every replica answers to on the network: the host name in haproxy.cfg.
SERVICE = "app"
CFG_IN_IMAGE = "/usr/local/etc/haproxy/haproxy.cfg"


@dataclass
class Stack:
    """Replicas and the proxy in front of them."""

    apps: list[dockerutil.AppContainer]
    proxy: Any
    proxy_port: int
    body: bytes

    def url(self, path: str) -> str:
        """The loopback URL of ``path`` through the proxy."""
        return f"http://127.0.0.1:{self.proxy_port}{path}"


def start_proxy(
    bench: EngineRun, cfg: Path, port: int, *, cpuset: str | None, timeout: float = 60.0
) -> tuple[Any, int]:
    """Start the proxy with the project's config; return it and its loopback port.

    It is ready when ``/ready`` answers 200 through it: the replicas were ready before
    it started, and the first answer of Docker's DNS names all of them.
    """
    container = bench.client.containers.run(
        bench.opts.proxy_image,
        volumes={str(cfg): {"bind": CFG_IN_IMAGE, "mode": "ro"}},
        ports={f"{port}/tcp": ("127.0.0.1", None)},
        network=bench.network,
        labels={dockerutil.LABEL: bench.run_id},
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        detach=True,
        **({"cpuset_cpus": cpuset} if cpuset else {}),
    )
    try:
        deadline = time.monotonic() + timeout
        host_port = _port(container, port, deadline)
        dockerutil.wait_ready(container, host_port, deadline)
    except BaseException:
        dockerutil.remove(container)
        raise
    return container, host_port


def _port(container: Any, port: int, deadline: float) -> int:
    while True:
        container.reload()
        bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{port}/tcp")
        if bindings:
            return int(bindings[0]["HostPort"])
        if container.status == "exited" or time.monotonic() > deadline:
            tail = container.logs(tail=5).decode(errors="replace")
            raise RuntimeError(f"the proxy published no port ({container.status}): {tail}")
        time.sleep(0.05)


@contextlib.contextmanager
def stack(
    bench: EngineRun,
    image: str,
    cfg: Path,
    port: int,
    env: dict[str, str],
    model: ModelSpec,
    replicas: int,
    *,
    pinned: bool = True,
) -> Iterator[Stack]:
    """``replicas`` app containers serving ``model`` and the proxy; removed on exit.

    ``pinned``: on the server's CPUs (as the serving section), else on every CPU.
    """
    cpuset = bench.opts.plan.server_cpuset if pinned else None
    if not pinned:
        # As the project's README says for replicas on one host: CPUs / replicas each.
        env = {**env, "TORCH_THREADS": str(max(1, len(os.sched_getaffinity(0)) // replicas))}
    env = {
        **env,
        "MODEL_PATH": f"/models/{model.filename}",
        "MODEL_SHA256": model.sha256,
        "BATCHING_ENABLED": "true",
    }
    apps: list[dockerutil.AppContainer] = []
    proxy = None
    try:
        for _ in range(replicas):
            apps.append(bench.start_app(image, env, port, cpuset=cpuset, aliases=(SERVICE,)))
        proxy, proxy_port = start_proxy(bench, cfg, port, cpuset=cpuset)
        info = json.loads(loopback.request(apps[0].url("/model"), timeout=5)[1])
        body = serving.predict_body([int(x) for x in info["input_shape"]])
        running = Stack(apps, proxy, proxy_port, body)
        # Warm every replica through the proxy (it spreads these over all of them).
        for _ in range(10 * replicas):
            status, answer = loopback.request(running.url("/predict"), body, timeout=30)
            if status != 200:
                raise RuntimeError(
                    f"POST /predict through the proxy answered {status}: {answer[:200]!r}"
                )
        yield running
    finally:
        if proxy is not None:
            dockerutil.remove(proxy)
        for app in apps:
            dockerutil.remove(app.container)


def load(
    bench: EngineRun, url: str, body: bytes, labels: dict[str, Any], *, pinned: bool = True
) -> dict[str, Any]:
    """One closed-loop load point at 32 clients; recorded with the serving points.

    ``pinned``: the load generator on the client CPUs, else on every CPU.
    """
    plan = bench.opts.plan
    point = serving.run_load(
        url,
        method="POST" if body else "GET",
        body=body,
        concurrency=32,
        max_requests=plan.max_requests,
        duration=plan.duration,
        warmup=plan.warmup,
        timeout=plan.timeout,
        cpus=set(plan.client_cpus) if plan.client_cpus and pinned else None,
    )
    point.update(labels)
    bench.results.serving.append(point)
    return point


def replicas_section(
    bench: EngineRun,
    image: str,
    project_dir: Path,
    port: int,
    base_env: dict[str, str],
    models: list[ModelSpec],
) -> None:
    """Scale the heavier model over replicas, then price the proxy on the tiny one."""
    cfg = project_dir / "proxy" / "haproxy.cfg"
    jobs = {
        "scaling": lambda: _scaling(bench, image, cfg, port, base_env, models),
        "the proxy's cost": lambda: _proxy_cost(bench, image, cfg, port, base_env, models[0]),
    }
    for name, job in jobs.items():
        try:
            job()
        except Exception as exc:
            bench.results.failures.append(f"replicas, {name}: {exc}")


def replica_counts(quick: bool) -> tuple[int, ...]:
    """How many replicas each point runs."""
    return (1, 2) if quick else (1, 2, 4)


def _scaling(
    bench: EngineRun,
    image: str,
    cfg: Path,
    port: int,
    env: dict[str, str],
    models: list[ModelSpec],
) -> None:
    model = next((m for m in models if m.name == "heavy"), models[0])
    # Pinned: the replicas and the proxy share the server's CPU, as one container does in
    # the serving section. Then, where the run pins, every CPU for everything (replicas,
    # proxy, database and load generator): what this machine gives with more replicas.
    series = [(True, replica_counts(bench.opts.quick))]
    if bench.opts.plan.server_cpuset:
        series.append((False, (1, 2)))
    for pinned, counts in series:
        where = f"CPU {bench.opts.plan.server_cpuset}" if pinned else "every CPU"
        points: dict[int, dict[str, Any]] = {}
        for count in counts:
            bench.progress(f"replicas: {model.name} model, {count} replica(s) on {where}")
            with stack(bench, image, cfg, port, env, model, count, pinned=pinned) as running:
                labels = {
                    "model": model.name,
                    "batching": f"on, {count} replica(s) on {where}",
                    "endpoint": "/predict via proxy",
                    "concurrency": 32,
                }
                points[count] = load(
                    bench, running.url("/predict"), running.body, labels, pinned=pinned
                )
        one = points.get(1, {})
        for count, point in points.items():
            if count == 1:
                continue
            bench.results.add(
                Row(
                    f"replicas.{model.name}_x{count}{'' if pinned else '_all_cpus'}",
                    SECTION,
                    f"{model.name} model, {count} replicas on {where}: /predict throughput",
                    "rps",
                    point.get("throughput_rps"),
                    one.get("throughput_rps"),
                    f"1 replica on {where}, same proxy",
                    note=_latency(point, one),
                    error=point.get("error") or one.get("error"),
                )
            )


def _proxy_cost(
    bench: EngineRun, image: str, cfg: Path, port: int, env: dict[str, str], tiny: ModelSpec
) -> None:
    bench.progress("replicas: the proxy's cost, tiny model, one replica")
    medians: dict[str, dict[str, Any]] = {}
    with stack(bench, image, cfg, port, env, tiny, 1) as running:
        direct = running.apps[0]
        for endpoint, body in (("/predict", running.body), ("/health", b"")):
            labels = {"model": tiny.name, "batching": "on, 1 replica", "concurrency": 32}
            rounds: dict[str, list[dict[str, Any]]] = {"proxy": [], "direct": []}
            for _ in range(bench.opts.plan.rounds):
                rounds["proxy"].append(
                    load(
                        bench,
                        running.url(endpoint),
                        body,
                        {**labels, "endpoint": f"{endpoint} via proxy"},
                    )
                )
                rounds["direct"].append(
                    load(
                        bench,
                        direct.url(endpoint),
                        body,
                        {**labels, "endpoint": f"{endpoint} direct"},
                    )
                )
            via = serving.median_round(rounds["proxy"])
            own = serving.median_round(rounds["direct"])
            medians[endpoint] = via
            bench.results.add(
                Row(
                    f"replicas.proxy_{endpoint.strip('/')}",
                    SECTION,
                    f"tiny model, 1 replica: {endpoint} throughput through the proxy",
                    "rps",
                    via.get("throughput_rps"),
                    own.get("throughput_rps"),
                    "the same container, direct",
                    note=_latency(via, own),
                    error=via.get("error") or own.get("error"),
                )
            )
    _target_through_proxy(bench, medians)


def _target_through_proxy(bench: EngineRun, medians: dict[str, dict[str, Any]]) -> None:
    """The serving section's tiny-model target, both sides measured through the proxy."""
    pred, floor = medians.get("/predict", {}), medians.get("/health", {})
    bench.results.add(
        Row(
            "replicas.proxy_predict_vs_floor",
            SECTION,
            "tiny model, 1 replica, through the proxy: /predict throughput",
            "rps",
            pred.get("throughput_rps"),
            floor.get("throughput_rps"),
            "/health floor through the same proxy",
            note=_latency(pred, floor),
            target=Target("ratio", ">=", 0.65),
            error=None if pred and floor else "load point missing",
        )
    )


def _latency(point: dict[str, Any], baseline: dict[str, Any]) -> str:
    """p50/p99 of a point and of its baseline, for the note."""
    parts = []
    for name, p in (("", point), ("baseline ", baseline)):
        if p.get("p50_ms") is not None:
            parts.append(f"{name}p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms")
    return "; ".join(parts)
