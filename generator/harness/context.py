"""What one ``servegen test`` run was asked, and the context its steps share.

:class:`RunContext` is built once, right after preflight, and never changes: the run's
names (id, image tag, compose project), its private scratch folder with throw-away
secrets, the compose calls bound to the project's file and the smoke overlay, and the
facts of that overlay known before ``compose config`` is read. A step that learns
something new (the demo model's checksum) derives a new value with
:func:`dataclasses.replace` instead of changing the context.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from generator.harness import wheelhouse
from generator.harness.compose import ComposeRun
from generator.harness.overlay import (
    HOST_PORT_VARIABLE,
    PLACEHOLDER_SHA256,
    RUN_LABEL,
    OverlaySpec,
)
from generator.harness.preflight import Environment
from generator.harness.project import Project

#: The overlay's file name in the run's scratch folder.
OVERLAY_FILE = "smoke-overlay.yaml"

#: Compose variables of the caller's shell that would name other files or projects.
_FOREIGN_COMPOSE_VARIABLES = ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES")


@dataclass(frozen=True)
class HarnessOptions:
    """What ``servegen test`` was asked to do."""

    project_dir: Path
    base_image: str | None = None
    db_image: str | None = None
    proxy_image: str | None = None
    wheelhouse: str | None = None  # a directory, or "auto"
    keep: bool = False
    json_path: Path | None = None
    ready_timeout: float = 180.0
    docker_host: str | None = None
    #: after the smoke checks, break the database, the app and the model on purpose
    drills: bool = False


@dataclass(frozen=True)
class RunContext:
    """Everything the steps of one run share; built once after preflight."""

    options: HarnessOptions
    project: Project
    env: Environment
    run_id: str
    #: the run's own tag of the app image, removed at tear-down
    app_image: str
    #: private scratch folder (0700): the overlay and throw-away secrets
    workdir: Path
    #: compose calls with the project's file and the overlay (model checksum unknown yet)
    compose: ComposeRun
    #: the overlay's facts known before the project's compose model is read
    overlay: OverlaySpec

    @property
    def overlay_path(self) -> Path:
        """Where the smoke overlay is written (once, by the lint step)."""
        return self.workdir / OVERLAY_FILE

    @property
    def base_image(self) -> str | None:
        """The image the build starts FROM: ``--base-image``, else the Dockerfile's default."""
        return self.options.base_image or self.project.default_base_image

    @property
    def labels(self) -> dict[str, str]:
        """The label that marks what the run creates outside compose."""
        return {RUN_LABEL: self.run_id}

    def compose_for_model(self, sha256: str, host_port: int | None = None) -> ComposeRun:
        """Return the compose calls that hand the downloader the demo model's checksum.

        With ``host_port`` the stack's front (its proxy, or the app) is published on
        that port of 127.0.0.1 rather than on one the engine picks.
        """
        env = {**self.compose.env, "MODEL_SHA256": sha256}
        if host_port is not None:
            env[HOST_PORT_VARIABLE] = str(host_port)
        return dataclasses.replace(self.compose, env=env)

    def project_compose(self) -> ComposeRun:
        """Return compose calls that see the project's own files only (no overlay)."""
        files = (self.project.compose_file, self.project.demo_compose_file)
        return dataclasses.replace(self.compose, files=files)


def create_context(
    options: HarnessOptions, project: Project, env: Environment, run_id: str
) -> RunContext:
    """Pick the run's names, make its scratch folder and throw-away secrets."""
    slug = "".join(c if c.isalnum() else "-" for c in project.slug.lower())[:30].strip("-")
    app_image = f"{run_id}-{slug}:smoke"
    workdir = Path(tempfile.mkdtemp(prefix=f"servegen-{run_id}-"))
    try:
        secret_files = _throwaway_secrets(project, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    overlay = OverlaySpec(
        run_id=run_id,
        app_image=app_image,
        api_port=project.api_port,
        services=(),
        build_args=_build_args(options),
        secret_files=secret_files,
    )
    compose = ComposeRun(
        env.compose,
        f"{run_id}-{slug}",
        project.root,
        (project.compose_file, project.demo_compose_file, workdir / OVERLAY_FILE),
        _compose_env(options, env, app_image, overlay),
    )
    return RunContext(options, project, env, run_id, app_image, workdir, compose, overlay)


def _throwaway_secrets(project: Project, workdir: Path) -> dict[str, Path]:
    """Write a random password for each secret the project lacks (a fresh clone)."""
    files: dict[str, Path] = {}
    for name in project.missing_secrets():
        path = workdir / f"{name}.txt"
        path.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        # Read by the database's and the app's own (non-root) users inside the containers;
        # the scratch folder itself is private (mkdtemp makes it 0700).
        path.chmod(0o644)
        files[name] = path
    return files


def _build_args(options: HarnessOptions) -> dict[str, str]:
    """Return the build arguments that ``--base-image`` and ``--wheelhouse`` ask for."""
    args: dict[str, str] = {}
    if options.base_image:
        args["BASE_IMAGE"] = options.base_image
    if options.wheelhouse:
        args.update(wheelhouse.BUILD_ARGS)
    return args


def _compose_env(
    options: HarnessOptions, env: Environment, app_image: str, overlay: OverlaySpec
) -> dict[str, str]:
    """Return the variables every compose call of the run sees."""
    compose_env = dict(os.environ)
    for name in _FOREIGN_COMPOSE_VARIABLES:
        compose_env.pop(name, None)  # the run names its own files and project
    compose_env["APP_IMAGE"] = app_image
    # The overlay reads the checksum from here; the real one is known after the build.
    compose_env["MODEL_SHA256"] = PLACEHOLDER_SHA256
    # The engine picks the app's host port unless the run pins it (never the shell).
    compose_env[HOST_PORT_VARIABLE] = ""
    if env.docker_host:
        compose_env["DOCKER_HOST"] = env.docker_host
    if options.db_image:
        compose_env["MYSQL_IMAGE"] = options.db_image
    if options.proxy_image:
        compose_env["PROXY_IMAGE"] = options.proxy_image
    if options.base_image:
        compose_env["BASE_IMAGE"] = options.base_image
    return compose_env
