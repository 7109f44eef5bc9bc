"""``servegen test``: run every step in order, always tear down, report, raise a failure.

Steps: project, preflight, lint, wheelhouse, build, demo-model, up, ready, predict,
malformed, database, then with ``--drills`` db-outage, app-crash and bad-checksum, and
teardown. After preflight the run's :class:`RunContext` is built
once; every later step is a small function of it that returns its figures for the
report. The first failure stops the run; tear-down runs anyway (also after
SIGINT/SIGTERM) unless ``--keep`` asked to leave the stack up.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from generator.errors import (
    BuildFailed,
    InternalError,
    Interrupted,
    ServegenError,
    SmokeFailed,
    UsageError,
)
from generator.harness import build as build_step
from generator.harness import (
    containers,
    drill_checksum,
    drill_crash,
    drill_db,
    lint,
    loopback,
    probes,
    readiness,
    signals,
    stack,
    wheelhouse,
)
from generator.harness.compose import ComposeRun
from generator.harness.context import HarnessOptions, RunContext, create_context
from generator.harness.demo_model import demo_model_sha256
from generator.harness.overlay import APP, services_of, spec_fields_from_model, write_overlay
from generator.harness.preflight import Environment, check_gpu, run_preflight
from generator.harness.project import load_project
from generator.harness.report import FAILED, Report, Step
from generator.harness.teardown import teardown


def run(options: HarnessOptions, out: TextIO | None = None) -> Report:
    """Run the harness on ``options.project_dir``, print the report and return it.

    A run that did not pass raises the error that ended it (an :class:`InternalError`
    for a bug), marked ``reported``: the report has said what went wrong, and the error
    carries the exit code.
    """
    out = out if out is not None else sys.stdout
    report = Report(Path(options.project_dir), f"sgtest-{secrets.token_hex(4)}")
    env: Environment | None = None
    ctx: RunContext | None = None
    error: ServegenError | Interrupted | None = None
    try:
        with signals.raising():
            with _step(report, "project") as step:
                project = load_project(Path(options.project_dir))
                step.figures.update(
                    slug=project.slug, api_port=project.api_port, db=project.db_name
                )
            with _step(report, "preflight") as step:
                env = run_preflight(options.docker_host, project.root)
                check_gpu(env, str(project.answers.get("accelerator") or "cpu"))
                step.figures.update(env.figures)
            ctx = create_context(options, project, env, report.run_id)
            _exercise(ctx, report)
    except (ServegenError, Interrupted) as exc:
        error = exc
    except Exception as exc:  # a bug: still tear down, and say what happened in one line
        error = _internal_error(exc, report)
    finally:
        with signals.held():
            if ctx is not None:
                _finish(ctx, report, keep=_keeps_stack(options, report, error))
            if env is not None:
                env.client.close()
    error = error or _teardown_failure(report)
    report.finish(error)
    report.print_table(out)
    json_error = _write_json(report, options.json_path)
    if ctx is not None and _keeps_stack(options, report, error):
        _print_keep(ctx, report, out)
    if error is None:
        if json_error is not None:
            raise json_error
        return report
    if json_error is not None:
        # The run's failure keeps its exit code; the report that could not be written is
        # still said, in the same one-line form as any other error.
        sys.stderr.write(f"error: {json_error.user_message()}\n")
    error.reported = True
    raise error


def _exercise(ctx: RunContext, report: Report) -> None:
    """Lint, build, start and probe: every step between preflight and tear-down."""
    _progress().write(
        f"servegen test: run {ctx.run_id}, compose project {ctx.compose.name}, "
        f"image {ctx.app_image}\n"
    )
    with _step(report, "lint") as step:
        step.figures.update(_lint(ctx))
    if ctx.options.wheelhouse:
        with _step(report, "wheelhouse") as step:
            step.figures.update(_wheelhouse(ctx, ctx.options.wheelhouse))
    else:
        report.skip("wheelhouse", "not asked for (pip uses the index)")
    with _step(report, "build") as step:
        step.figures.update(_build(ctx, step))
    with _step(report, "demo-model") as step:
        step.figures["sha256"] = demo_model_sha256(ctx.env.client, ctx.app_image, ctx.run_id)
    # The crash drill needs an address that outlives a restart: a port of our choosing
    # (the engine gives a port it picked up again when the container restarts).
    # Ref: https://github.com/moby/moby/issues/31926
    host_port = loopback.free_port() if ctx.options.drills else None
    compose = ctx.compose_for_model(str(step.figures["sha256"]), host_port)
    started = time.monotonic()  # start-up is timed from here to the first /ready 200
    with _step(report, "up") as step, _blame_container(ctx):
        step.figures.update(_up(ctx, compose, started))
    url = str(step.figures["url"])
    with _step(report, "ready") as step, _blame_container(ctx):
        step.figures.update(
            readiness.wait_ready(
                ctx.env.client, ctx.compose.name, url, started, ctx.options.ready_timeout
            )
        )
    with _step(report, "predict") as step, _blame_container(ctx):
        project = ctx.project
        step.figures.update(probes.predict(url, project.sample_request, project.sample_upload))
    request_id = str(step.figures["request_id"])
    with _step(report, "malformed") as step, _blame_container(ctx):
        step.figures.update(probes.malformed(url))
    with _step(report, "database") as step, _blame_container(ctx):
        step.figures.update(_database(ctx, request_id))
    if ctx.options.drills:
        _drills(ctx, report, compose, url)


def _drills(ctx: RunContext, report: Report, compose: ComposeRun, url: str) -> None:
    """Break the running stack on purpose, one drill per step (``--drills``)."""
    out = _progress()
    with _step(report, "db-outage") as step:
        step.figures.update(drill_db.db_outage(ctx, url, out))
    with _step(report, "app-crash") as step:
        step.figures.update(drill_crash.app_crash(ctx, url, out))
    with _step(report, "bad-checksum") as step:
        step.figures.update(drill_checksum.bad_checksum(ctx, compose, out))


def _progress() -> TextIO:
    return sys.stderr


@contextmanager
def _step(report: Report, name: str) -> Iterator[Step]:
    """Record a step in the report and tell the person watching that it started."""
    _progress().write(f"-> {name}\n")
    with report.step(name) as step:
        yield step


# ---------------------------------------------------------------------------- steps


def _lint(ctx: RunContext) -> dict[str, Any]:
    """Run hadolint; read the project's compose model, write the overlay, validate both."""
    figures = lint.hadolint(ctx.project)
    try:
        model = ctx.project_compose().config_model()
    except ValueError as exc:
        raise BuildFailed(f"docker compose config rejected compose.yaml: {exc}") from None
    if APP not in services_of(model):
        raise BuildFailed("compose.yaml has no `app` service")
    spec = dataclasses.replace(ctx.overlay, **spec_fields_from_model(model))
    write_overlay(ctx.overlay_path, spec)
    figures.update(lint.compose_config(ctx.compose))
    return figures


def _wheelhouse(ctx: RunContext, choice: str) -> dict[str, Any]:
    """Fill (``auto``) or link (a folder) the project's ``wheels/`` for an offline build."""
    if choice == "auto":
        target = wheelhouse.probe_target(
            ctx.env.client, ctx.base_image or "", ctx.project.python_version, ctx.labels
        )
        return wheelhouse.fill_auto(ctx.project, target)
    return wheelhouse.link_dir(ctx.project, Path(choice))


def _build(ctx: RunContext, step: Step) -> dict[str, Any]:
    """Build the app image and measure it; the whole build log goes on ``step``."""
    try:
        figures, step.log = build_step.build(ctx.compose, _progress())
    except BuildFailed as exc:
        step.log = list(exc.log_tail)
        raise
    figures.update(build_step.measure(ctx.env.client, ctx.app_image, ctx.base_image))
    return figures


def _up(ctx: RunContext, compose: ComposeRun, started: float) -> dict[str, Any]:
    """Start the stack (compose calls that know the model's checksum); say where it answers."""
    stack.up(compose, ctx.options.ready_timeout, _progress())
    up_seconds = round(time.monotonic() - started, 1)
    port = containers.published_port(ctx.env.client, compose.name, ctx.project.api_port)
    front, _ = containers.front_container(ctx.env.client, compose.name)
    return {"up_seconds": up_seconds, "url": f"http://127.0.0.1:{port}", "via": front}


def _database(ctx: RunContext, request_id: str) -> dict[str, Any]:
    """Find the prediction's row in the stack's database."""
    db = containers.service_container(ctx.env.client, ctx.compose.name, "db")
    if db is None:
        raise SmokeFailed("the db container is missing")
    return probes.prediction_row(db, ctx.project.db_name, request_id)


@contextmanager
def _blame_container(ctx: RunContext) -> Iterator[None]:
    """Give a smoke failure the log of the container most likely at fault.

    That log (a downloader refusing a checksum, an app that crashed) says more than
    compose's own output, so it replaces the failure's log when there is one.
    """
    try:
        yield
    except SmokeFailed as exc:
        try:
            source, lines = containers.failing_container_log(ctx.env.client, ctx.compose.name)
        except Exception:
            lines = []
        if lines:
            exc.log_source, exc.log_tail = source, lines
        raise


# ----------------------------------------------------------------------- the end


def _internal_error(exc: Exception, report: Report) -> InternalError:
    """Record a bug's traceback (for the JSON report only) and return its one-line error."""
    report.traceback = traceback.format_exc()
    report.notes.append("This is a bug in servegen; the JSON report (--json) holds the traceback.")
    return InternalError(f"internal error: {exc.__class__.__name__}: {exc}")


def _keeps_stack(
    options: HarnessOptions, report: Report, error: ServegenError | Interrupted | None
) -> bool:
    """Tell whether ``--keep`` leaves the stack running: it was started, and no signal came."""
    started = report.find("up") is not None
    return options.keep and started and not isinstance(error, Interrupted)


def _finish(ctx: RunContext, report: Report, keep: bool) -> None:
    """Tear down (unless kept) and remove the scratch folder."""
    try:
        if keep:
            report.skip("teardown", "--keep: the stack is left running")
        else:
            with _step(report, "teardown") as step:
                figures = teardown(ctx.env.client, ctx.compose, ctx.run_id, ctx.app_image)
                step.figures.update(figures)
                if figures["remaining"]:
                    raise SmokeFailed(f"left behind after tear-down: {figures['remaining']}")
    except Exception:  # noqa: S110 - recorded by the step; the verdict reads it from there
        pass
    finally:
        if not keep:
            shutil.rmtree(ctx.workdir, ignore_errors=True)


def _teardown_failure(report: Report) -> SmokeFailed | None:
    """Return the failure of a tear-down that left something behind (it fails the run)."""
    teardown_step = report.find("teardown")
    if teardown_step is not None and teardown_step.status == FAILED:
        return SmokeFailed(teardown_step.message)
    return None


def _write_json(report: Report, path: Path | None) -> UsageError | None:
    """Write the JSON report when asked for; return the error when it cannot be written."""
    if path is None:
        return None
    try:
        report.write_json(Path(path))
    except OSError as exc:
        return UsageError(f"cannot write the JSON report to {path}: {exc.strerror}")
    return None


def _print_keep(ctx: RunContext, report: Report, out: TextIO) -> None:
    up = report.find("up")
    url = up.figures.get("url") if up is not None else None
    out.write(f"\nThe stack is still running: {url or '(app not published)'}\n")
    out.write("Remove it, its volumes, its image and its scratch folder with:\n")
    # Compose v2 finds a project's containers, networks and volumes by name alone.
    out.write(
        f"  {ctx.compose.down_command()} --remove-orphans"
        f" && docker image rm {ctx.app_image} && rm -r {ctx.workdir}\n"
    )
