"""How close the service comes to what the machine allows, each limit measured in the run.

``limits`` (``--only limits``), on the default project's image with the app pinned to
one core and the database and load generator on the others:

- **heavy model vs its own forward pass**: ``/predict`` items per second at 32 clients
  (batching on, prediction log on) against the handler's batched forward rate measured
  inside the same image on the same pinned core, without HTTP: at the mean batch size
  the batcher formed under that load (read from ``/metrics``) and at ``BATCH_MAX_SIZE``;
  then against the ceiling that one-item requests have on one core (the ``/health``
  floor and the forward pass share it), and with clients that send 8 items per request;
- **the prediction log's cost**: ``/predict`` at 32 clients with the log on against off,
  for the tiny and the heavy model, and the log records dropped under load (none
  allowed);
- **latency at equal load**: the heavy model's unbatched capacity (closed loop, 32
  clients, batching off), then a fixed offered rate (open loop) at 50, 80 and 95 % of
  it, batching on and off: p50 and p99 measured from each request's due time.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from benchmarks import dockerutil, serving
from benchmarks.harness_adapter import loopback
from benchmarks.report import Row, Target
from benchmarks.serving import ModelSpec

if TYPE_CHECKING:
    from benchmarks.engine import EngineRun

SECTION = "Limits (one pinned core; every baseline measured in this run)"
FRACTIONS = (0.5, 0.8, 0.95)
#: Timed inside the image on the server's core: the handler's run() on ready items.
_FORWARD_SCRIPT = """
import json, sys, time
from {pkg}.handler import Handler
from {pkg}.model import load_model
from {pkg}.settings import Settings
settings = Settings(model_path=sys.argv[1], model_sha256=sys.argv[2], db_enabled=False)
handler = Handler()
load_model(settings, handler)
item = handler.preprocess(handler.example())
rates = {{}}
for size in [int(n) for n in sys.argv[3].split(",")]:
    items = [item] * size
    for _ in range(5):
        handler.run(items)
    passes, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1.5:
        handler.run(items)
        passes += 1
    rates[size] = passes * size / (time.perf_counter() - start)
print(json.dumps(rates))
"""


def offline_rates(
    bench: EngineRun, image: str, package: str, model: ModelSpec, sizes: list[int]
) -> dict[int, float]:
    """Items per second of the handler's batched forward pass, per batch size."""
    script = _FORWARD_SCRIPT.format(pkg=package)
    sizes_arg = ",".join(str(n) for n in sizes)
    out = bench.client.containers.run(
        image,
        ["python", "-c", script, f"/models/{model.filename}", model.sha256, sizes_arg],
        remove=True,
        network_disabled=True,
        labels={dockerutil.LABEL: bench.run_id},
        volumes={str(bench.model_dir): {"bind": "/models", "mode": "ro"}},
        cpuset_cpus=bench.opts.plan.server_cpuset,
        stderr=False,
    )
    rates = json.loads(out.decode().strip().splitlines()[-1])
    return {int(size): float(rate) for size, rate in rates.items()}


def metrics(app: dockerutil.AppContainer) -> dict[str, float]:
    """The app's /metrics as name{labels} -> value (samples without labels by name)."""
    status, body = loopback.request(app.url("/metrics"), timeout=5)
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}")
    values: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


class _App:
    """One app container of the section, with what its load points need."""

    def __init__(
        self, bench: EngineRun, image: str, port: int, env: dict[str, str], model: ModelSpec
    ) -> None:
        self.bench, self.model = bench, model
        env = {**env, "MODEL_PATH": f"/models/{model.filename}", "MODEL_SHA256": model.sha256}
        self.app = bench.start_app(image, env, port, cpuset=bench.opts.plan.server_cpuset)
        info = json.loads(loopback.request(self.app.url("/model"), timeout=5)[1])
        self.shape = [int(x) for x in info["input_shape"]]
        self.body = serving.predict_body(self.shape)
        for _ in range(20):
            loopback.request(self.app.url("/predict"), self.body, timeout=10)

    def load(
        self,
        label: str,
        *,
        clients: int = 32,
        rate: float | None = None,
        endpoint: str = "/predict",
        body: bytes | None = None,
    ) -> dict[str, Any]:
        """One load point (closed loop at ``clients``, or a fixed ``rate``).

        ``endpoint`` /predict is sent this app's one-item body unless ``body`` is given;
        /health is a GET.
        """
        plan = self.bench.opts.plan
        self.bench.progress(f"limits: {label}")
        post = endpoint == "/predict"
        point = serving.run_load(
            self.app.url(endpoint),
            method="POST" if post else "GET",
            body=(body or self.body) if post else b"",
            concurrency=clients if rate is None else 64,
            max_requests=plan.max_requests,
            duration=plan.duration,
            warmup=plan.warmup,
            timeout=plan.timeout,
            cpus=set(plan.client_cpus) if plan.client_cpus else None,
            rate=rate,
        )
        point.update(
            model=self.model.name,
            endpoint=endpoint,
            batching=label,
            concurrency=f"{rate:.0f}/s" if rate is not None else clients,
        )
        self.bench.results.serving.append(point)
        return point

    def close(self) -> None:
        dockerutil.remove(self.app.container)


def limits_section(
    bench: EngineRun,
    image: str,
    package: str,
    port: int,
    base_env: dict[str, str],
    models: list[ModelSpec],
) -> None:
    """Run the three comparisons; a failing one is reported and the others still run."""
    tiny, heavy = models[0], next((m for m in models if m.name == "heavy"), None)
    jobs = {
        "heavy model vs its forward pass": lambda: _heavy_vs_forward(
            bench, image, package, port, base_env, heavy
        ),
        "the prediction log's cost": lambda: _log_cost(bench, image, port, base_env, [tiny, heavy]),
        "latency at equal load": lambda: _equal_load(bench, image, port, base_env, heavy),
    }
    for name, job in jobs.items():
        try:
            job()
        except Exception as exc:
            bench.results.failures.append(f"limits, {name}: {exc}")


#: Items per request of the multi-item load point: a client that sends its own batches.
MULTI_ITEMS = 8


def _mean_batch(before: dict[str, float], after: dict[str, float]) -> float:
    """Mean items per forward pass between two /metrics readings (0 without passes)."""
    passes = after["inference_batch_size_count"] - before.get("inference_batch_size_count", 0)
    items = after["inference_batch_size_sum"] - before.get("inference_batch_size_sum", 0)
    return items / passes if passes else 0.0


def _heavy_vs_forward(
    bench: EngineRun,
    image: str,
    package: str,
    port: int,
    env: dict[str, str],
    heavy: ModelSpec | None,
) -> None:
    if heavy is None:
        raise RuntimeError("no heavier model")
    app = _App(bench, image, port, {**env, "BATCHING_ENABLED": "true"}, heavy)
    try:
        before = metrics(app.app)
        served = app.load("on, log on")["throughput_rps"]
        middle = metrics(app.app)
        multi_body = serving.predict_body(app.shape, MULTI_ITEMS)
        multi = app.load(f"on, log on, {MULTI_ITEMS} items per request", body=multi_body)
        after = metrics(app.app)
        floor = app.load("on, /health floor", endpoint="/health")["throughput_rps"]
    finally:
        app.close()
    multi["concurrency"] = f"32 x {MULTI_ITEMS} items"
    single_batch, multi_batch = _mean_batch(before, middle), _mean_batch(middle, after)
    mean_batch, largest = max(1, round(single_batch)), 32
    rates = offline_rates(bench, image, package, heavy, sorted({mean_batch, largest}))
    note = f"mean batch under load {single_batch:.1f} items"
    for size, why in ((mean_batch, "the mean batch under load"), (largest, "BATCH_MAX_SIZE")):
        bench.results.add(
            Row(
                f"limits.heavy_vs_forward_{size}",
                SECTION,
                f"heavy model: /predict items/s at 32 clients vs forward passes of {size} ({why})",
                "rps",
                served,
                rates[size],
                f"handler.run on {size} items, same core, no HTTP",
                note=note,
                target=Target("ratio", ">=", 0.85) if size == largest else None,
            )
        )
    _ceiling_rows(bench, served, floor, rates, mean_batch, multi["throughput_rps"], multi_batch)


def _ceiling_rows(
    bench: EngineRun,
    served: float,
    floor: float,
    rates: dict[int, float],
    mean_batch: int,
    multi_rps: float,
    multi_batch: float,
) -> None:
    """The one-core ceiling of one-item requests, and the multi-item load point."""
    largest = max(rates)
    # One item per request pays the HTTP round trip (the /health floor) and the forward
    # pass's share on the same core, so it can at best reach 1 / (1/floor + 1/forward).
    ceiling = 1 / (1 / floor + 1 / rates[mean_batch])
    bench.results.add(
        Row(
            "limits.heavy_vs_ceiling",
            SECTION,
            "heavy model: /predict items/s at 32 clients vs the one-core ceiling of one-item"
            " requests",
            "rps",
            served,
            ceiling,
            f"1 / (1/{floor:,.0f} + 1/{rates[mean_batch]:,.0f}): /health floor and forward"
            f" passes of {mean_batch}, both on this core",
            note=f"the ceiling is {ceiling / rates[largest]:.2f}x the forward rate at 32",
        )
    )
    bench.results.add(
        Row(
            "limits.heavy_multi_vs_forward",
            SECTION,
            f"heavy model: /predict items/s at 32 clients sending {MULTI_ITEMS} items per"
            f" request vs forward passes of {largest}",
            "rps",
            multi_rps * MULTI_ITEMS,
            rates[largest],
            f"handler.run on {largest} items, same core, no HTTP",
            note=f"mean batch under load {multi_batch:.1f} items",
        )
    )


def _log_cost(
    bench: EngineRun, image: str, port: int, env: dict[str, str], models: list[ModelSpec | None]
) -> None:
    if env.get("DB_ENABLED") == "false":
        raise RuntimeError("no database in this run: the log cannot be measured on")
    for model in [m for m in models if m is not None]:
        points: dict[str, dict[str, Any]] = {}
        dropped = 0.0
        for label, extra in (("log on", {}), ("log off", {"DB_ENABLED": "false"})):
            app = _App(bench, image, port, {**env, **extra, "BATCHING_ENABLED": "true"}, model)
            try:
                points[label] = app.load(f"on, {label}")
                if label == "log on":
                    time.sleep(1.0)  # the writer's last batch
                    dropped = metrics(app.app).get("db_queue_dropped_total", 0.0)
            finally:
                app.close()
        bench.results.add(
            Row(
                f"limits.log_{model.name}",
                SECTION,
                f"{model.name} model: /predict at 32 clients, prediction log on",
                "rps",
                points["log on"]["throughput_rps"],
                points["log off"]["throughput_rps"],
                "log off (DB_ENABLED=false)",
                note=f"log records dropped: {dropped:.0f}",
                target=Target("ratio", ">=", 0.9),
                error=None if dropped == 0 else f"{dropped:.0f} log records dropped",
            )
        )


def _equal_load(
    bench: EngineRun, image: str, port: int, env: dict[str, str], heavy: ModelSpec | None
) -> None:
    if heavy is None:
        raise RuntimeError("no heavier model")
    found: dict[tuple[str, float], dict[str, Any]] = {}
    capacity = 0.0
    for flag, label in (("false", "off"), ("true", "on")):
        app = _App(bench, image, port, {**env, "BATCHING_ENABLED": flag}, heavy)
        try:
            if label == "off":
                capacity = app.load("off, closed loop: the capacity")["throughput_rps"]
            for fraction in FRACTIONS:
                rate = capacity * fraction
                found[(label, fraction)] = app.load(f"{label}, {fraction:.0%} offered", rate=rate)
        finally:
            app.close()
    for fraction in FRACTIONS:
        on, off = found[("on", fraction)], found[("off", fraction)]
        achieved = f"achieved {on['achieved_rps']:,.0f} vs {off['achieved_rps']:,.0f} req/s"
        bench.results.add(
            Row(
                f"limits.equal_load_{int(fraction * 100)}",
                SECTION,
                f"heavy model, {capacity * fraction:,.0f} req/s offered ({fraction:.0%} of the"
                " unbatched capacity): p99, batching on",
                "ms",
                on["p99_ms"],
                off["p99_ms"],
                "batching off, same offered rate",
                note=f"p50 {on['p50_ms']:.1f} vs {off['p50_ms']:.1f} ms; {achieved}",
                target=Target("ratio", "<=", 1.0) if fraction == 0.8 else None,
            )
        )
