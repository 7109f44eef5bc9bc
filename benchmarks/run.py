"""One benchmark run: render a project, then measure every section against its baseline.

Sections (``--only`` picks some): ``generation`` (no engine needed), ``build`` (image
and build figures, servegen against the naive single-stage pattern), ``startup`` and
``serving`` (the servegen image). A section that fails is reported as failed and the
others still run; every container, network and image the run made is removed at the
end, also on Ctrl-C.
"""

from __future__ import annotations

import os
import platform
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import generation, harness_adapter
from benchmarks.report import Results, Row, Target
from benchmarks.serving import LoadPlan, ModelSpec, find_point
from benchmarks.stats import median

SECTIONS = ("generation", "build", "startup", "serving")
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunOptions:
    """What ``python -m benchmarks run`` was asked to do."""

    quick: bool = False
    sections: tuple[str, ...] = SECTIONS
    base_image: str = "python:3.11-slim"
    db_image: str = "mysql:8.4"
    heavy_model_args: tuple[str, ...] = ("--heavy",)
    keep_images: bool = False
    image: str | None = None
    pin: bool = True
    command: str = ""

    @property
    def repetitions(self) -> int:
        """Repetitions of the short, noisy timings (generation, start-up)."""
        return 1 if self.quick else 5

    @property
    def plan(self) -> LoadPlan:
        """Load levels, durations and CPU placement of the serving section.

        With two CPUs or more, the server gets CPU 0 and the load generator (and the
        database) the others, so that the client's own work does not eat into the
        server's CPU and the figures describe the server on one core.
        """
        pinning: dict[str, Any] = {}
        cpus = sorted(os.sched_getaffinity(0))
        if self.pin and len(cpus) >= 2:
            pinning = {"server_cpuset": str(cpus[0]), "client_cpus": frozenset(cpus[1:])}
        if self.quick:
            return LoadPlan(
                levels=(1, 32),
                duration=1.0,
                warmup=0.3,
                max_requests=5_000,
                rounds=1,
                **pinning,
            )
        return LoadPlan(**pinning)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_facts(client: Any | None) -> dict[str, str]:
    """Describe the machine the figures come from."""
    facts = {
        "CPU cores (this process may use)": str(len(os.sched_getaffinity(0))),
        "CPU": _cpu_model(),
        "Python (host)": platform.python_version(),
        "kernel": platform.release(),
    }
    try:
        load1, load5, _ = os.getloadavg()
        facts["load average at start (1 min, 5 min)"] = f"{load1:.2f}, {load5:.2f}"
    except OSError:
        pass
    if client is not None:
        info = client.version()
        facts["Docker engine"] = str(info.get("Version"))
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def render_project(dest: Path) -> Path:
    """Render the default project with ``servegen new --no-input`` into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        generation.servegen_command(dest),
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    children = [p for p in dest.iterdir() if p.is_dir()]
    if proc.returncode != 0 or len(children) != 1:
        reason = harness_adapter.last_line(proc.stderr or proc.stdout)
        raise RuntimeError(f"servegen new failed ({proc.returncode}): {reason}")
    return children[0]


def section_generation(results: Results, opts: RunOptions) -> None:
    """``servegen new --no-input`` against plain ``cookiecutter --no-input``."""
    _log(f"generation: {opts.repetitions} repetitions of each command")
    s_med, c_med, s_all, c_all = generation.compare(opts.repetitions)
    results.add(
        Row(
            "generation.new",
            "Generation (median wall time of a fresh process)",
            "servegen new --no-input",
            "s",
            s_med,
            c_med,
            "plain cookiecutter --no-input",
            note=f"{len(s_all)} runs each; servegen {min(s_all):.2f}-{max(s_all):.2f} s, "
            f"cookiecutter {min(c_all):.2f}-{max(c_all):.2f} s",
            target=Target("ratio", "<=", 1.5),
        )
    )


def section_startup(
    client: Any,
    results: Results,
    opts: RunOptions,
    *,
    project_dir: Path,
    images: dict[str, str],
    start_app: Callable[[str], float],
) -> None:
    """``compose up`` -> ``/ready`` (servegen test), then container start -> ``/ready``."""
    sec = "Start-up (demo model)"
    _log("startup: servegen test (compose up -> /ready, with the database and downloader)")
    report = harness_adapter.servegen_test(project_dir, opts.base_image, opts.db_image)
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
    samples: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    for label, image in images.items():
        samples[label] = []
        for i in range(opts.repetitions):
            _log(f"startup: {label} image, container start -> /ready ({i + 1}/{opts.repetitions})")
            try:
                samples[label].append(start_app(image))
            except Exception as exc:
                errors[label] = str(exc)
                break
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
                target=Target("ratio", ">=", 0.5) if batching == "on" else None,
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


def run(opts: RunOptions) -> Results:
    """Run the asked sections and return their results (never raises for one section)."""
    results = Results(
        command=opts.command, started_utc=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    needs_engine = any(s in opts.sections for s in ("build", "startup", "serving"))
    client = None
    if needs_engine:
        client = harness_adapter.connect()
    results.machine = machine_facts(client)
    if needs_engine:
        results.machine["base image"] = opts.base_image
        results.machine["database image"] = opts.db_image
    if "generation" in opts.sections:
        try:
            section_generation(results, opts)
        except Exception as exc:
            results.failures.append(f"generation: {exc}")
    if not needs_engine:
        return results
    run_id = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix=f"servegen-bench-{run_id}-"))
    try:
        _engine_sections(client, results, opts, run_id, work)
    finally:
        _cleanup(client, run_id, opts, results)
        shutil.rmtree(work, ignore_errors=True)
    return results


def _engine_sections(
    client: Any, results: Results, opts: RunOptions, run_id: str, work: Path
) -> None:
    from benchmarks import dockerutil, images, serving

    _log("rendering the default project with servegen new")
    project_dir = render_project(work / "servegen")
    built: dict[str, str] = {}
    if opts.image:
        # Start-up and serving of an image built earlier (no build section): tagged for
        # this run so that nothing else removes it meanwhile; the tag goes at the end.
        repo_tag = f"servegen-bench/servegen:{run_id}"
        try:
            client.images.get(opts.image).tag(repo_tag)
        except Exception as exc:
            raise RuntimeError(f"--image {opts.image}: not found on this engine") from exc
        built["servegen"] = repo_tag
    else:
        _log("filling the wheelhouse (servegen test --wheelhouse auto)")
        harness_adapter.fill_wheelhouse(
            client, project_dir, opts.base_image, {dockerutil.LABEL: run_id}
        )
    if "build" in opts.sections:
        try:
            built = images.run(
                client,
                work=work,
                project_dir=project_dir,
                base_image=opts.base_image,
                run_id=run_id,
                results=results,
                progress=_log,
            )
        except Exception as exc:
            results.failures.append(f"build: {exc}")
    if not ({"startup", "serving"} & set(opts.sections)):
        return
    if "servegen" not in built:
        _log("building the servegen image (with the layer cache) for start-up and serving")
        target = harness_adapter.BuildTarget(
            project_dir, f"servegen-bench/servegen:{run_id}", f"sgbench-{run_id}-s", opts.base_image
        )
        harness_adapter.build(target)
        built["servegen"] = target.image
    image = built["servegen"]
    port = harness_adapter.project(project_dir).api_port
    model_dir = work / "models"
    model_dir.mkdir()
    _log("making the demo model and the heavier benchmark model with the image's own script")
    tiny = ModelSpec("tiny", "model.pt", dockerutil.make_model(client, image, model_dir, []), ())
    heavy: ModelSpec | None = None
    try:
        sub = model_dir / "heavy"
        sub.mkdir()
        sha = dockerutil.make_model(client, image, sub, list(opts.heavy_model_args))
        (sub / "model.pt").rename(model_dir / "heavy.pt")
        heavy = ModelSpec("heavy", "heavy.pt", sha, opts.heavy_model_args)
    except Exception as exc:
        results.failures.append(f"heavier model: {exc}")
    password = secrets.token_urlsafe(16)
    db_name = "bench"
    net_name = f"servegen-bench-{run_id}"
    with dockerutil.network(client, net_name, run_id):
        base_env = {"DEV_MODE": "false", "WORKERS": "1"}
        try:
            _log(f"starting the database ({opts.db_image}) for the prediction log")
            client_cpus = opts.plan.client_cpus
            dockerutil.start_db(
                client,
                opts.db_image,
                name=f"bench-db-{run_id}",
                network=net_name,
                run_id=run_id,
                password=password,
                database=db_name,
                cpuset=",".join(str(c) for c in sorted(client_cpus)) if client_cpus else None,
            )
            base_env.update(
                {
                    "DB_HOST": f"bench-db-{run_id}",
                    "DB_NAME": db_name,
                    "DB_USER": "app",
                    "DB_PASSWORD": password,
                }
            )
        except Exception as exc:
            results.notes.append(f"no database ({exc}): prediction logging off (DB_ENABLED=false)")
            base_env["DB_ENABLED"] = "false"
        tiny_env = {**base_env, "MODEL_PATH": "/models/model.pt", "MODEL_SHA256": tiny.sha256}

        def start_once(img: str) -> float:
            app = dockerutil.start_app(
                client,
                img,
                env=tiny_env,
                model_dir=model_dir,
                container_port=port,
                run_id=run_id,
                network=net_name,
            )
            dockerutil.remove(app.container)
            return app.start_to_ready

        if "startup" in opts.sections:
            try:
                section_startup(
                    client,
                    results,
                    opts,
                    project_dir=project_dir,
                    images=built,
                    start_app=start_once,
                )
            except Exception as exc:
                results.failures.append(f"startup: {exc}")
        if "serving" in opts.sections:
            points: list[dict[str, Any]] = []
            plan = opts.plan
            models = [tiny] + ([heavy] if heavy else [])
            for model in models:
                for batching in (True, False):
                    health = plan.levels if (model.name == "tiny" and batching) else (32,)
                    try:
                        points += serving.run_configuration(
                            client,
                            image,
                            model=model,
                            batching=batching,
                            base_env=base_env,
                            model_dir=model_dir,
                            container_port=port,
                            run_id=run_id,
                            network=net_name,
                            plan=plan,
                            health_levels=health,
                            progress=_log,
                        )
                    except Exception as exc:
                        results.failures.append(f"serving {model.name}, batching {batching}: {exc}")
            serving_rows(results, points)
            results.notes.append(f"serving: {plan.describe()}")
        dockerutil.cleanup(client, run_id)


def _cleanup(client: Any, run_id: str, opts: RunOptions, results: Results) -> None:
    from benchmarks import dockerutil

    leftovers = dockerutil.cleanup(client, run_id)
    if leftovers:
        results.failures.append("left behind: " + "; ".join(leftovers))
    if opts.keep_images:
        return
    for failure in dockerutil.remove_run_images(client, run_id):
        results.failures.append(f"not removed: {failure}")


def command_line(argv: list[str]) -> str:
    """The command as a person would type it again."""
    return shlex.join(["python", "-m", "benchmarks", *argv])
