"""``servegen test``: run every step in order, always tear down, report, return the code.

Steps: project, preflight, lint, wheelhouse, build, demo-model, up, ready, predict,
malformed, database, teardown. The first failure stops the run; tear-down runs anyway
(also after SIGINT/SIGTERM) unless ``--keep`` asked to leave the stack up.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from generator.errors import (
    BuildFailed,
    InternalError,
    Interrupted,
    ServegenError,
    SmokeFailed,
    UsageError,
)
from generator.harness import build as build_step
from generator.harness import lint, probes, signals, stack, wheelhouse
from generator.harness.compose import ComposeRun
from generator.harness.overlay import (
    APP,
    PLACEHOLDER_SHA256,
    RUN_LABEL,
    OverlaySpec,
    spec_fields_from_model,
    write_overlay,
)
from generator.harness.preflight import Environment, check_gpu, run_preflight
from generator.harness.project import Project, load_project
from generator.harness.report import FAILED, Report, Step
from generator.harness.teardown import teardown


@dataclass(frozen=True)
class HarnessOptions:
    """What ``servegen test`` was asked to do."""

    project_dir: Path
    base_image: str | None = None
    db_image: str | None = None
    wheelhouse: str | None = None  # a directory, or "auto"
    keep: bool = False
    json_path: Path | None = None
    ready_timeout: float = 180.0
    docker_host: str | None = None
    model_sha256_override: str | None = None  # hidden option, for tests


@dataclass
class _Run:
    """State shared by the steps of one run."""

    options: HarnessOptions
    report: Report
    out: TextIO
    project: Project | None = None
    env: Environment | None = None
    compose: ComposeRun | None = None
    spec: OverlaySpec | None = None
    workdir: Path | None = None
    overlay_path: Path | None = None
    app_image: str = ""
    base_url: str = ""
    stack_up: bool = False
    build_args: dict[str, str] = field(default_factory=dict)


def run(options: HarnessOptions, out: TextIO | None = None) -> Report:
    """Run the harness on ``options.project_dir``, print the report and return it.

    A run that did not pass raises the error that ended it (or an :class:`InternalError`
    for a bug), marked ``reported``: the report has said what went wrong, and the error
    carries the exit code.
    """
    out = out if out is not None else sys.stdout
    run_id = f"sgtest-{secrets.token_hex(4)}"
    state = _Run(options, Report(Path(options.project_dir), run_id), out)
    error: ServegenError | Interrupted | None = None
    try:
        with signals.raising():
            _steps(state)
    except (ServegenError, Interrupted) as exc:
        error = exc
    except Exception as exc:  # a bug: still tear down, and say what happened in one line
        error = InternalError(f"internal error: {exc.__class__.__name__}: {exc}")
        state.report.traceback = traceback.format_exc()
        state.report.notes.append(
            "This is a bug in servegen; the JSON report (--json) holds the traceback."
        )
    finally:
        with signals.held():
            _finish(state, error)
            if state.env is not None:
                state.env.client.close()
    if error is None:
        error = _teardown_failure(state.report)
    state.report.finish(error)
    state.report.print_table(out)
    json_error = _write_json(state.report, options.json_path)
    if options.keep and state.stack_up and state.compose is not None:
        _print_keep(state)
    if error is None:
        if json_error is not None:
            raise json_error
        return state.report
    if json_error is not None:
        # The run's failure keeps its exit code; the report that could not be written is
        # still said, in the same one-line form as any other error.
        sys.stderr.write(f"error: {json_error.user_message()}\n")
    error.reported = True
    raise error


def _teardown_failure(report: Report) -> SmokeFailed | None:
    """Return the failure of a tear-down that left something behind (it fails the run)."""
    teardown_step = next((s for s in report.steps if s.name == "teardown"), None)
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


def _steps(state: _Run) -> None:
    options, report = state.options, state.report
    with _step(state, "project") as step:
        project = state.project = load_project(Path(options.project_dir))
        step.figures.update(slug=project.slug, api_port=project.api_port, db=project.db_name)
    with _step(state, "preflight") as step:
        env = state.env = run_preflight(options.docker_host, project.root)
        check_gpu(env, str(project.answers.get("accelerator") or "cpu"))
        step.figures.update(env.figures)
    _prepare(state, project, env)
    assert state.compose is not None
    _progress_stream().write(
        f"servegen test: run {report.run_id}, compose project {state.compose.name}, "
        f"image {state.app_image}\n"
    )
    with _step(state, "lint") as step:
        step.figures.update(lint.hadolint(project))
        step.figures.update(_overlay_and_config(state))
    _wheelhouse(state, project, env)
    with _step(state, "build") as step:
        try:
            figures, step.log = build_step.build(state.compose, _progress_stream())
        except BuildFailed as exc:
            step.log = list(exc.log_tail)
            raise
        step.figures.update(figures)
        base = options.base_image or project.default_base_image
        step.figures.update(build_step.measure(env.client, state.app_image, base))
    with _step(state, "demo-model") as step:
        sha = stack.demo_model_sha256(env.client, state.app_image, report.run_id)
        step.figures["sha256"] = sha
        if options.model_sha256_override:
            sha = options.model_sha256_override
            step.figures["sha256_given_to_downloader"] = sha
        _write_overlay(state, sha)
    with _step(state, "up") as step, _with_container_log(state):
        state.stack_up = True
        started = time.monotonic()
        stack.up(state.compose, options.ready_timeout, _progress_stream())
        step.figures["up_seconds"] = round(time.monotonic() - started, 1)
        port = stack.published_port(env.client, state.compose.name, project.api_port)
        state.base_url = f"http://127.0.0.1:{port}"
        step.figures["url"] = state.base_url
    with _step(state, "ready") as step, _with_container_log(state):
        step.figures.update(
            stack.wait_ready(
                env.client, state.compose.name, state.base_url, started, options.ready_timeout
            )
        )
    with _step(state, "predict") as step, _with_container_log(state):
        step.figures.update(probes.predict(state.base_url, project.sample_request))
    request_id = str(step.figures["request_id"])
    with _step(state, "malformed") as step, _with_container_log(state):
        step.figures.update(probes.malformed(state.base_url))
    with _step(state, "database") as step, _with_container_log(state):
        db = stack.service_container(env.client, state.compose.name, "db")
        if db is None:
            raise SmokeFailed("the db container is missing")
        step.figures.update(probes.prediction_row(db, project.db_name, request_id))


def _progress_stream() -> TextIO:
    return sys.stderr


@contextmanager
def _step(state: _Run, name: str) -> Iterator[Step]:
    """Record a step in the report and tell the person watching that it started."""
    _progress_stream().write(f"-> {name}\n")
    with state.report.step(name) as step:
        yield step


def _prepare(state: _Run, project: Project, env: Environment) -> None:
    """Pick the run's names, make its scratch folder and the throw-away secrets."""
    slug = "".join(c if c.isalnum() else "-" for c in project.slug.lower())[:30].strip("-")
    run_id = state.report.run_id
    state.app_image = f"{run_id}-{slug}:smoke"
    state.workdir = Path(tempfile.mkdtemp(prefix=f"servegen-{run_id}-"))
    secret_files: dict[str, Path] = {}
    for name in project.missing_secrets():
        path = state.workdir / f"{name}.txt"
        path.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        # Read by the database's and the app's own (non-root) users inside the containers;
        # the scratch folder itself is private (mkdtemp makes it 0700).
        path.chmod(0o644)
        secret_files[name] = path
    compose_env = dict(os.environ)
    for name in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
        compose_env.pop(name, None)  # the run names its own files and project
    compose_env["APP_IMAGE"] = state.app_image
    compose_env["MODEL_SHA256"] = PLACEHOLDER_SHA256
    if env.docker_host:
        compose_env["DOCKER_HOST"] = env.docker_host
    if state.options.db_image:
        compose_env["MYSQL_IMAGE"] = state.options.db_image
    if state.options.base_image:
        compose_env["BASE_IMAGE"] = state.options.base_image
        state.build_args["BASE_IMAGE"] = state.options.base_image
    state.overlay_path = state.workdir / "smoke-overlay.yaml"
    state.compose = ComposeRun(
        env.compose, f"{run_id}-{slug}", project.root, [project.compose_file], compose_env
    )
    state.spec = OverlaySpec(
        run_id=run_id,
        app_image=state.app_image,
        api_port=project.api_port,
        services=(),
        secret_files=secret_files,
    )


def _overlay_and_config(state: _Run) -> dict[str, Any]:
    """Read the project's compose model, write the overlay, validate both together."""
    assert state.compose is not None and state.spec is not None
    try:
        model = state.compose.config_model()
    except ValueError as exc:
        raise BuildFailed(f"docker compose config rejected compose.yaml: {exc}") from None
    if APP not in (model.get("services") or {}):
        raise BuildFailed("compose.yaml has no `app` service")
    fields = spec_fields_from_model(model)
    state.spec = OverlaySpec(**{**state.spec.__dict__, **fields})
    _write_overlay(state, PLACEHOLDER_SHA256)
    assert state.overlay_path is not None
    state.compose.files = [state.compose.files[0], state.overlay_path]
    return lint.compose_config(state.compose)


def _write_overlay(state: _Run, sha256: str) -> None:
    assert state.spec is not None and state.overlay_path is not None
    assert state.compose is not None
    state.spec = OverlaySpec(
        **{**state.spec.__dict__, "model_sha256": sha256, "build_args": dict(state.build_args)}
    )
    state.compose.env["MODEL_SHA256"] = sha256
    state.compose.env["MODEL_URL"] = state.spec.model_url
    write_overlay(state.overlay_path, state.spec)


def _wheelhouse(state: _Run, project: Project, env: Environment) -> None:
    choice = state.options.wheelhouse
    if not choice:
        state.report.skip("wheelhouse", "not asked for (pip uses the index)")
        return
    with _step(state, "wheelhouse") as step:
        if choice == "auto":
            base = state.options.base_image or project.default_base_image or ""
            target = wheelhouse.probe_target(
                env.client, base, project.python_version, {RUN_LABEL: state.report.run_id}
            )
            step.figures.update(wheelhouse.fill_auto(project, target))
        else:
            step.figures.update(wheelhouse.link_dir(project, Path(choice)))
        state.build_args.update(wheelhouse.BUILD_ARGS)
        _write_overlay(state, PLACEHOLDER_SHA256)


class _with_container_log:  # noqa: N801 - used like a function in ``with`` statements
    """Attach the log of the container at fault to a smoke failure that has none better."""

    def __init__(self, state: _Run):
        self.state = state

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> Literal[False]:
        state = self.state
        if isinstance(exc, SmokeFailed) and state.env is not None and state.compose:
            try:
                source, lines = stack.failing_container_log(state.env.client, state.compose.name)
            except Exception:  # the report must not fail because a log is unreadable
                return False
            if lines:
                exc.log_source, exc.log_tail = source, lines
        return False


def _finish(state: _Run, error: ServegenError | Interrupted | None) -> None:
    """Tear down (unless kept) and remove the scratch folder."""
    keep = state.options.keep and state.stack_up and not isinstance(error, Interrupted)
    try:
        if state.compose is not None and state.env is not None and not keep:
            with _step(state, "teardown") as step:
                figures = teardown(
                    state.env.client, state.compose, state.report.run_id, state.app_image
                )
                step.figures.update(figures)
                if figures["remaining"]:
                    raise SmokeFailed(f"left behind after tear-down: {figures['remaining']}")
        elif keep:
            state.report.skip("teardown", "--keep: the stack is left running")
    except Exception:  # noqa: S110 - recorded by the step; the verdict reads it from there
        pass
    finally:
        if state.workdir is not None and not keep:
            shutil.rmtree(state.workdir, ignore_errors=True)


def _print_keep(state: _Run) -> None:
    assert state.compose is not None
    out = state.out
    out.write(f"\nThe stack is still running: {state.base_url or '(app not published)'}\n")
    out.write("Remove it, its volumes, its image and its scratch folder with:\n")
    # Compose v2 finds a project's containers, networks and volumes by name alone.
    out.write(
        f"  {state.compose.down_command()} --remove-orphans"
        f" && docker image rm {state.app_image} && rm -r {state.workdir}\n"
    )
