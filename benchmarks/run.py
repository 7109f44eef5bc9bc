"""One benchmark run: render a project, then measure every section against its baseline.

Sections (``--only`` picks some): ``generation`` (no engine needed), ``build`` (image
and build figures, servegen against the naive single-stage pattern), ``startup`` and
``serving`` (the servegen image), ``limits`` (the heavy model against its own forward
pass, the prediction log's cost, latency at equal offered load), ``formats`` (each model
format against TorchScript) and ``image`` (image classification, batching on against
off). A section that fails is
reported as failed and the others still run; every container, network and image the
run made is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import dockerutil, engine, generation, harness_adapter
from benchmarks.report import Results, Row, Target
from benchmarks.serving import LoadPlan

SECTIONS = (
    "generation",
    "build",
    "startup",
    "serving",
    "limits",
    "replicas",
    "formats",
    "image",
)
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunOptions:
    """What ``python -m benchmarks run`` was asked to do."""

    quick: bool = False
    sections: tuple[str, ...] = SECTIONS
    base_image: str = "python:3.11-slim"
    db_image: str = "mysql:8.4"
    proxy_image: str = "haproxy:3.0"
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


def run(opts: RunOptions) -> Results:
    """Run the asked sections and return their results (never raises for one section)."""
    results = Results(
        command=opts.command, started_utc=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    needs_engine = any(s != "generation" for s in opts.sections)
    client = None
    if needs_engine:
        client = harness_adapter.connect()
    results.machine = machine_facts(client)
    if needs_engine:
        results.machine["base image"] = opts.base_image
        results.machine["database image"] = opts.db_image
        results.machine["proxy image"] = opts.proxy_image
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
        _log("rendering the default project with servegen new")
        project_dir = render_project(work / "servegen")
        bench = engine.EngineRun(client, results, opts, run_id, work, progress=_log)
        engine.engine_sections(bench, project_dir)
    finally:
        _cleanup(client, run_id, opts, results)
        shutil.rmtree(work, ignore_errors=True)
    return results


def _cleanup(client: Any, run_id: str, opts: RunOptions, results: Results) -> None:
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
