"""The sections that need a Docker engine: build, start-up and serving.

One function per job, all reading one :class:`EngineRun` (the client, the results,
the options, the run's id and scratch folder): the build section (or an image given
with ``--image``), the servegen image and the two models that start-up and serving
use, the prediction-log database, and the two sections themselves. Everything made
here carries the run's label; :func:`benchmarks.run.run` removes it at the end.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import dockerutil, harness_adapter, images, limits, replicas, serving, variants
from benchmarks.report import Results, Row, Target
from benchmarks.serving import ModelSpec, find_point
from benchmarks.stats import median

if TYPE_CHECKING:
    from benchmarks.run import RunOptions

#: The database (and user) the app containers log their predictions to.
DB_NAME = "bench"
DB_USER = "app"


@dataclass(frozen=True)
class EngineRun:
    """What the engine sections of one benchmark run share."""

    client: Any
    results: Results
    opts: RunOptions
    run_id: str
    work: Path
    progress: Callable[[str], None]

    @property
    def network(self) -> str:
        """The private network of the app and database containers."""
        return f"servegen-bench-{self.run_id}"

    @property
    def db_host(self) -> str:
        """The database container's name, which is its host name on the network."""
        return f"bench-db-{self.run_id}"

    @property
    def model_dir(self) -> Path:
        """The folder of model files, bind-mounted read-only at ``/models``."""
        return self.work / "models"

    def image_tag(self, variant: str) -> str:
        """The run's own tag for an image (removed at the end unless kept)."""
        return f"servegen-bench/{variant}:{self.run_id}"

    def start_app(
        self,
        image: str,
        env: dict[str, str],
        port: int,
        *,
        cpuset: str | None = None,
        aliases: tuple[str, ...] = (),
    ) -> dockerutil.AppContainer:
        """An app container of ``image`` on the run's network, ready, with the models."""
        return dockerutil.start_app(
            self.client,
            image,
            env=env,
            model_dir=self.model_dir,
            container_port=port,
            run_id=self.run_id,
            network=self.network,
            cpuset=cpuset,
            aliases=aliases,
        )


def engine_sections(bench: EngineRun, project_dir: Path) -> None:
    """Run the build, start-up and serving sections that ``bench.opts`` asks for."""
    sections = bench.opts.sections
    built = _build_section(bench, project_dir)
    if not ({"startup", "serving", "limits", "replicas", "formats", "image"} & set(sections)):
        return
    if "servegen" not in built:
        built["servegen"] = _build_for_serving(bench, project_dir)
    bench.model_dir.mkdir()
    if {"startup", "serving", "limits", "replicas"} & set(sections):
        models = _make_models(bench, project_dir, built["servegen"])
        project = harness_adapter.project(project_dir)
        port = project.api_port
        with dockerutil.network(bench.client, bench.network, bench.run_id):
            base_env = _database_env(bench)
            if "startup" in sections:
                _startup_section(bench, project_dir, built, port, base_env, models[0])
            if "serving" in sections:
                _serving_section(bench, built["servegen"], port, base_env, models)
            if "limits" in sections:
                package = str(project.answers["package_name"])
                limits.limits_section(bench, built["servegen"], package, port, base_env, models)
            if "replicas" in sections:
                replicas.replicas_section(
                    bench, built["servegen"], project_dir, port, base_env, models
                )
            dockerutil.cleanup(bench.client, bench.run_id)
    default = variants.measured(bench, project_dir, built["servegen"])
    if "formats" in sections:
        variants.formats_section(bench, default)
    if "image" in sections:
        variants.image_section(bench, default)


def _build_section(bench: EngineRun, project_dir: Path) -> dict[str, str]:
    """Build both images (the build section) or tag ``--image``; return label -> image."""
    opts, built = bench.opts, {}
    if opts.image:
        # Start-up and serving of an image built earlier (no build section): tagged for
        # this run so that nothing else removes it meanwhile; the tag goes at the end.
        try:
            bench.client.images.get(opts.image).tag(bench.image_tag("servegen"))
        except Exception as exc:
            raise RuntimeError(f"--image {opts.image}: not found on this engine") from exc
        built["servegen"] = bench.image_tag("servegen")
    else:
        bench.progress("filling the wheelhouse (servegen test --wheelhouse auto)")
        harness_adapter.fill_wheelhouse(
            bench.client, project_dir, opts.base_image, {dockerutil.LABEL: bench.run_id}
        )
    if "build" in opts.sections:
        try:
            built = images.run(
                bench.client,
                work=bench.work,
                project_dir=project_dir,
                base_image=opts.base_image,
                run_id=bench.run_id,
                results=bench.results,
                progress=bench.progress,
            )
        except Exception as exc:
            bench.results.failures.append(f"build: {exc}")
    return built


def _build_for_serving(bench: EngineRun, project_dir: Path) -> str:
    """Build the servegen image (with the layer cache) when the build section did not."""
    bench.progress("building the servegen image (with the layer cache) for start-up and serving")
    target = harness_adapter.BuildTarget(
        project_dir,
        bench.image_tag("servegen"),
        f"sgbench-{bench.run_id}-s",
        bench.opts.base_image,
    )
    harness_adapter.build(target)
    return target.image


def _make_models(bench: EngineRun, project_dir: Path, image: str) -> list[ModelSpec]:
    """Make the demo model and the heavier one with the image's own script.

    The demo model is needed by everything after; a heavier model that cannot be made
    is a failure of its own, and serving goes on with the demo model alone.
    """
    bench.progress(
        "making the demo model and the heavier benchmark model with the image's own script"
    )
    fmt = str(harness_adapter.project(project_dir).answers["model_format"])
    filename = variants.MODEL_FILES[fmt]
    sha = dockerutil.make_model(bench.client, image, bench.model_dir, [], filename)
    models = [ModelSpec("tiny", filename, sha, ())]
    heavy_args = bench.opts.heavy_model_args
    try:
        sub = bench.model_dir / "heavy"
        sub.mkdir()
        sha = dockerutil.make_model(bench.client, image, sub, list(heavy_args), filename)
        models.append(ModelSpec("heavy", f"heavy/{filename}", sha, heavy_args))
    except Exception as exc:
        bench.results.failures.append(f"heavier model: {exc}")
    return models


def _database_env(bench: EngineRun) -> dict[str, str]:
    """Start the prediction-log database; return the app's environment that points at it.

    Without a database the apps run with logging off, and a note says so.
    """
    env = {"DEV_MODE": "false", "WORKERS": "1"}
    password = secrets.token_urlsafe(16)
    client_cpus = bench.opts.plan.client_cpus
    try:
        bench.progress(f"starting the database ({bench.opts.db_image}) for the prediction log")
        dockerutil.start_db(
            bench.client,
            bench.opts.db_image,
            name=bench.db_host,
            network=bench.network,
            run_id=bench.run_id,
            password=password,
            database=DB_NAME,
            cpuset=",".join(str(c) for c in sorted(client_cpus)) if client_cpus else None,
        )
    except Exception as exc:
        bench.results.notes.append(
            f"no database ({exc}): prediction logging off (DB_ENABLED=false)"
        )
        return {**env, "DB_ENABLED": "false"}
    return {
        **env,
        "DB_HOST": bench.db_host,
        "DB_NAME": DB_NAME,
        "DB_USER": DB_USER,
        "DB_PASSWORD": password,
    }


def _startup_section(
    bench: EngineRun,
    project_dir: Path,
    built: dict[str, str],
    port: int,
    base_env: dict[str, str],
    tiny: ModelSpec,
) -> None:
    """Time start-up: ``servegen test``'s figure, then each image's container start."""
    env = {**base_env, "MODEL_PATH": f"/models/{tiny.filename}", "MODEL_SHA256": tiny.sha256}

    def start_once(image: str) -> float:
        app = bench.start_app(image, env, port)
        dockerutil.remove(app.container)
        return app.start_to_ready

    try:
        section_startup(
            bench.results,
            bench.opts,
            project_dir=project_dir,
            images=built,
            start_app=start_once,
            progress=bench.progress,
        )
    except Exception as exc:
        bench.results.failures.append(f"startup: {exc}")


def _serving_section(
    bench: EngineRun, image: str, port: int, base_env: dict[str, str], models: list[ModelSpec]
) -> None:
    """Load every (model, batching) configuration, then derive the serving rows."""
    plan = bench.opts.plan
    points: list[dict[str, Any]] = []
    for model in models:
        for batching in (True, False):
            # The /health floor at every level once (tiny model, batching on); elsewhere
            # only at the level the targets compare.
            health = plan.levels if (model.name == "tiny" and batching) else (32,)
            try:
                points += serving.run_configuration(
                    bench.client,
                    image,
                    model=model,
                    batching=batching,
                    base_env=base_env,
                    model_dir=bench.model_dir,
                    container_port=port,
                    run_id=bench.run_id,
                    network=bench.network,
                    plan=plan,
                    health_levels=health,
                    progress=bench.progress,
                )
            except Exception as exc:
                bench.results.failures.append(f"serving {model.name}, batching {batching}: {exc}")
    serving_rows(bench.results, points)
    bench.results.notes.append(f"serving: {plan.describe()}")


def section_startup(
    results: Results,
    opts: RunOptions,
    *,
    project_dir: Path,
    images: dict[str, str],
    start_app: Callable[[str], float],
    progress: Callable[[str], None],
) -> None:
    """``compose up`` -> ``/ready`` (servegen test), then container start -> ``/ready``."""
    sec = "Start-up (demo model)"
    progress("startup: servegen test (compose up -> /ready, with the database and downloader)")
    report = harness_adapter.servegen_test(
        project_dir, opts.base_image, opts.db_image, opts.proxy_image
    )
    up_ready = harness_adapter.find_figure(report, "startup_seconds")
    up_only = harness_adapter.find_figure(report, "up_seconds")
    results.add(
        Row(
            "startup.compose",
            sec,
            "compose up -> /ready (servegen test)",
            "s",
            up_ready,
            note=f"servegen test exit code {report.get('exit_code')}; `compose up` itself "
            f"{up_only if up_only is not None else '?'} s (database healthy, model downloaded "
            "and verified); /ready polled every 0.5 s",
            error=None if up_ready is not None else "no start-up figure in the report",
        )
    )
    samples, errors = _container_startups(images, start_app, opts.repetitions, progress)
    s = samples.get("servegen") or []
    n = samples.get("naive single-stage") or []
    note = f"median of {len(s)}; polled every 20 ms"
    if errors:
        note += "; " + "; ".join(f"{k}: {v}" for k, v in errors.items())
    results.add(
        Row(
            "startup.container",
            sec,
            "container start -> /ready",
            "s",
            median(s) if s else None,
            median(n) if n else None,
            "naive single-stage" if n else "",
            note=note,
            target=Target("value", "<=", 5.0),
            error=None if s else errors.get("servegen", "not measured"),
        )
    )


def _container_startups(
    images: dict[str, str],
    start_app: Callable[[str], float],
    repetitions: int,
    progress: Callable[[str], None],
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Start each image ``repetitions`` times; return the seconds, and errors by label."""
    samples: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    for label, image in images.items():
        samples[label] = []
        for i in range(repetitions):
            progress(f"startup: {label} image, container start -> /ready ({i + 1}/{repetitions})")
            try:
                samples[label].append(start_app(image))
            except Exception as exc:
                errors[label] = str(exc)
                break
    return samples, errors


def _latency_note(pred: dict[str, Any] | None, floor: dict[str, Any] | None) -> str:
    """p50/p99 of the /predict point, and the spread of the rounds behind both points."""
    parts = []
    if pred and pred.get("p50_ms") is not None:
        parts.append(f"p50 {pred['p50_ms']:.1f} ms, p99 {pred['p99_ms']:.1f} ms")
    for name, point in (("/predict", pred), ("/health", floor)):
        rounds = (point or {}).get("rounds_rps")
        if rounds and len(rounds) > 1:
            spread = ", ".join(f"{x:,.0f}" for x in rounds)
            parts.append(f"{name} rounds {spread} req/s (median kept)")
    return "; ".join(parts)


def serving_rows(results: Results, points: list[dict[str, Any]]) -> None:
    """Derive the serving targets from the load points."""
    sec = "Serving (container on 127.0.0.1, 32 concurrent clients)"
    results.serving.extend(points)
    for batching in ("on", "off"):
        pred = find_point(points, "tiny", batching, "/predict", 32)
        floor = find_point(points, "tiny", batching, "/health", 32)
        results.add(
            Row(
                f"serving.tiny_{batching}",
                sec,
                f"tiny model, batching {batching}: /predict throughput",
                "rps",
                pred["throughput_rps"] if pred else None,
                floor["throughput_rps"] if floor else None,
                "/health floor, same server",
                note=_latency_note(pred, floor),
                target=Target("ratio", ">=", 0.65) if batching == "on" else None,
                error=None if pred and floor else "load point missing",
            )
        )
    on = find_point(points, "heavy", "on", "/predict", 32)
    off = find_point(points, "heavy", "off", "/predict", 32)
    results.add(
        Row(
            "serving.heavy_rps",
            sec,
            "heavier model: /predict throughput, batching on",
            "rps",
            on["throughput_rps"] if on else None,
            off["throughput_rps"] if off else None,
            "batching off",
            target=Target("ratio", ">=", 2.0),
            error=None if on and off else "load point missing",
        )
    )
    results.add(
        Row(
            "serving.heavy_p99",
            sec,
            "heavier model: /predict p99 latency, batching on",
            "ms",
            on["p99_ms"] if on else None,
            off["p99_ms"] if off else None,
            "batching off",
            target=Target("ratio", "<=", 1.5),
            error=None if on and off else "load point missing",
        )
    )
