"""The task and format variants: each model format against TorchScript, and images.

``formats``: the default project is rendered again with each model format (same task,
same demo network), each image is built the same way, and three figures are compared
with TorchScript's, measured in the same run: the bytes the image adds above the base,
the time the service takes to verify, load and warm up the model (timed inside fresh
container processes, median of the repetitions), and the tiny model's ``/predict``
throughput at 32 clients and latency at 1 client (the per-request cost of the format,
on one pinned core as in the serving section).

``image``: an image-classification project (the default format) with the heavier demo
CNN (3x96x96 input, three conv blocks), serving the project's own example request (a
real JPEG, decoded and resized on every request) at 32 clients, batching on against
off: images per second, p50 and p99; and the bytes its image adds (Pillow) against the
default project's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import dockerutil, harness_adapter, serving
from benchmarks.report import Row, Target
from benchmarks.serving import LoadPlan, ModelSpec, find_point
from benchmarks.stats import median

if TYPE_CHECKING:
    from benchmarks.engine import EngineRun

REPO_ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("torchscript", "state_dict", "export")
#: The model file's name by format, as the template names it.
MODEL_FILES = {"state_dict": "model.safetensors", "torchscript": "model.pt", "export": "model.pt2"}
IMAGE_TASK = "image-classification"
NO_DB = {"DB_ENABLED": "false", "DEV_MODE": "true"}

#: Timed inside the image: imports first, then the service's own verify-load-warm-up.
_LOAD_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import torch
from {pkg}.handler import Handler
from {pkg}.model import load_model
from {pkg}.settings import Settings
t1 = time.perf_counter()
settings = Settings(
    model_path=sys.argv[1], model_sha256=sys.argv[2], db_enabled=False, torch_threads=1
)
load_model(settings, Handler())
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1}}))
"""


@dataclass
class Built:
    """A variant's project, its image and the bytes that image adds above the base."""

    project: Path
    image: str
    added: int | None

    @property
    def package(self) -> str:
        """The project's package name."""
        return str(harness_adapter.project(self.project).answers["package_name"])

    @property
    def port(self) -> int:
        """The port the service listens on in the container."""
        return harness_adapter.project(self.project).api_port


@dataclass
class FormatFigures:
    """What the formats section measured for one format."""

    fmt: str
    built: Built
    loads: list[float] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The load points' model label."""
        return f"tiny-{self.fmt}"

    def rps(self, level: int) -> float | None:
        """/predict throughput at ``level`` clients."""
        found = find_point(self.points, self.label, "on", "/predict", level)
        return found["throughput_rps"] if found else None

    def p50(self, level: int) -> float | None:
        """/predict median latency at ``level`` clients."""
        found = find_point(self.points, self.label, "on", "/predict", level)
        return found["p50_ms"] if found else None


def render_variant(dest: Path, **answers: str) -> Path:
    """Render a project with ``servegen new --no-input`` and these answers into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "generator", "new", "--no-input", "--output-dir", str(dest)]
    for key, value in answers.items():
        argv += ["--set", f"{key}={value}"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    children = [p for p in dest.iterdir() if p.is_dir()]
    if proc.returncode != 0 or len(children) != 1:
        raise RuntimeError(f"servegen new failed: {harness_adapter.last_line(proc.stderr)}")
    return children[0]


def build_variant(bench: EngineRun, label: str, **answers: str) -> Built:
    """Render a variant, fill its wheelhouse and build its image offline."""
    bench.progress(f"{label}: rendering, filling the wheelhouse and building the image")
    project = render_variant(bench.work / label, **answers)
    opts = bench.opts
    harness_adapter.fill_wheelhouse(
        bench.client, project, opts.base_image, {dockerutil.LABEL: bench.run_id}
    )
    tag = bench.image_tag(label)
    harness_adapter.build(
        harness_adapter.BuildTarget(
            project, tag, f"sgbench-{bench.run_id}-{label}", opts.base_image
        )
    )
    return measured(bench, project, tag)


def measured(bench: EngineRun, project: Path, image: str) -> Built:
    """A built image with the bytes it adds above the base."""
    figures = harness_adapter.measure(bench.client, image, bench.opts.base_image)
    return Built(project, image, figures.get("added_bytes"))


def make_model(bench: EngineRun, built: Built, name: str, args: tuple[str, ...]) -> ModelSpec:
    """The image's own demo model (made with ``args``) in a folder of its own."""
    fmt = str(harness_adapter.project(built.project).answers["model_format"])
    folder = bench.model_dir / name
    folder.mkdir(parents=True)
    sha = dockerutil.make_model(bench.client, built.image, folder, list(args), MODEL_FILES[fmt])
    return ModelSpec(name, f"{name}/{MODEL_FILES[fmt]}", sha, args)


def load_seconds(bench: EngineRun, built: Built, model: ModelSpec) -> list[float]:
    """Verify-load-warm-up seconds of ``model``, each in a fresh container process."""
    script = _LOAD_SCRIPT.format(pkg=built.package)
    samples = []
    for _ in range(bench.opts.repetitions):
        out = bench.client.containers.run(
            built.image,
            ["python", "-c", script, f"/models/{model.filename}", model.sha256],
            remove=True,
            network_disabled=True,
            labels={dockerutil.LABEL: bench.run_id},
            volumes={str(bench.model_dir): {"bind": "/models", "mode": "ro"}},
            cpuset_cpus=bench.opts.plan.server_cpuset,
            stderr=False,
        )
        samples.append(float(json.loads(out.decode().strip().splitlines()[-1])["load_s"]))
    return samples


def plan_1_and_32(bench: EngineRun) -> LoadPlan:
    """The serving plan at 1 and 32 clients only (the levels these sections compare)."""
    plan = bench.opts.plan
    return LoadPlan(
        levels=(1, 32),
        duration=plan.duration,
        warmup=plan.warmup,
        max_requests=plan.max_requests,
        timeout=plan.timeout,
        server_cpuset=plan.server_cpuset,
        client_cpus=plan.client_cpus,
        paired_level=plan.paired_level,
        rounds=plan.rounds,
    )


def serve(
    bench: EngineRun,
    built: Built,
    model: ModelSpec,
    *,
    batching: bool,
    body: bytes | None = None,
    health_levels: tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    """The load points of one configuration (no database: the variants compare models)."""
    points = serving.run_configuration(
        bench.client,
        built.image,
        model=model,
        batching=batching,
        base_env=NO_DB,
        model_dir=bench.model_dir,
        container_port=built.port,
        run_id=bench.run_id,
        network=None,
        plan=plan_1_and_32(bench),
        health_levels=health_levels,
        progress=bench.progress,
        body=body,
    )
    bench.results.serving.extend(points)
    return points


# ----------------------------------------------------------------------------- formats


def formats_section(bench: EngineRun, default: Built) -> None:
    """Each model format against TorchScript: image bytes, load time, per-request cost."""
    default_format = str(harness_adapter.project(default.project).answers["model_format"])
    figures: dict[str, FormatFigures] = {}
    for fmt in FORMATS:
        try:
            built = (
                default
                if fmt == default_format
                else (build_variant(bench, f"format-{fmt.replace('_', '-')}", model_format=fmt))
            )
            got = figures[fmt] = FormatFigures(fmt, built)
            model = make_model(bench, built, got.label, ())
            bench.progress(f"formats: {fmt}, load time ({bench.opts.repetitions} processes)")
            got.loads = load_seconds(bench, built, model)
            got.points = serve(bench, built, model, batching=True)
        except Exception as exc:
            bench.results.failures.append(f"formats, {fmt}: {exc}")
    base = figures.get("torchscript")
    for got in figures.values():
        _format_rows(bench, got, None if got.fmt == "torchscript" else base)


def _format_rows(bench: EngineRun, got: FormatFigures, base: FormatFigures | None) -> None:
    sec = "Model formats (tiny demo model, same network; baseline: torchscript)"
    label = "torchscript" if base is not None else ""
    loads = ", ".join(f"{s:.3f}" for s in got.loads)
    pairs = [
        (
            "bytes",
            "image bytes above the base",
            "bytes",
            got.built.added,
            base.built.added if base else None,
            "",
        ),
        (
            "load",
            "verify, load and warm up the model",
            "s",
            median(got.loads) if got.loads else None,
            median(base.loads) if base and base.loads else None,
            f"median of {loads} s",
        ),
        (
            "rps32",
            "/predict throughput, 32 clients, batching on",
            "rps",
            got.rps(32),
            base.rps(32) if base else None,
            "",
        ),
        (
            "p50_1",
            "/predict p50 latency, 1 client",
            "ms",
            got.p50(1),
            base.p50(1) if base else None,
            "",
        ),
    ]
    for key, metric, unit, value, baseline, note in pairs:
        bench.results.add(
            Row(
                f"formats.{got.fmt}.{key}",
                sec,
                f"{got.fmt}: {metric}",
                unit,
                value,
                baseline,
                label,
                note=note,
                error=None if value is not None else "not measured",
            )
        )


# ------------------------------------------------------------------------------- image


def image_section(bench: EngineRun, default: Built) -> None:
    """Image classification at 32 clients, batching on against off, and its image bytes."""
    sec = "Image classification (heavier demo CNN, 3x96x96, the project's example JPEG)"
    try:
        built = build_variant(bench, "image", task=IMAGE_TASK)
        model = make_model(bench, built, "cnn-heavy", ("--heavy",))
        body = (built.project / "examples" / "predict_request.json").read_bytes()
        points = [
            *serve(bench, built, model, batching=True, body=body, health_levels=(32,)),
            *serve(bench, built, model, batching=False, body=body),
        ]
    except Exception as exc:
        bench.results.failures.append(f"image: {exc}")
        return
    on = find_point(points, "cnn-heavy", "on", "/predict", 32)
    off = find_point(points, "cnn-heavy", "off", "/predict", 32)
    floor = find_point(points, "cnn-heavy", "on", "/health", 32)
    rows = [
        Row(
            "image.rps",
            sec,
            "images/s, 32 clients, batching on",
            "rps",
            on and on["throughput_rps"],
            off and off["throughput_rps"],
            "batching off",
            note=f"/health floor of the same server {floor['throughput_rps']:,.0f} req/s"
            if floor
            else "",
        ),
        Row(
            "image.p50",
            sec,
            "p50 latency, 32 clients, batching on",
            "ms",
            on and on["p50_ms"],
            off and off["p50_ms"],
            "batching off",
        ),
        Row(
            "image.p99",
            sec,
            "p99 latency, 32 clients, batching on",
            "ms",
            on and on["p99_ms"],
            off and off["p99_ms"],
            "batching off",
            target=Target("ratio", "<=", 1.5),
        ),
        Row(
            "image.bytes",
            sec,
            "image bytes above the base (Pillow, python-multipart)",
            "bytes",
            built.added,
            default.added,
            "the default (tensor) project's image",
        ),
    ]
    for row in rows:
        row.error = None if row.value is not None else "not measured"
        bench.results.add(row)
