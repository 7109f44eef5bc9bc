"""The smoke overlay: a compose file the harness writes in its scratch folder, not the project.

Layered after the project's ``compose.yaml`` it
- labels every service, network and volume with ``io.servegen.run=<run id>`` so clean-up
  can find whatever the run made, even after a crash;
- publishes the app on an ephemeral port of 127.0.0.1 (``!override`` replaces the
  project's port list instead of appending to it);
- passes the build arguments of ``--base-image`` and ``--wheelhouse``;
- adds ``model-server``, a service from the app image that makes the demo model and
  serves it over HTTP inside the compose network, and points the downloader at it, so
  the real download-and-verify path runs. The model's sha256 is only known once the
  image is built, so the overlay takes it from the ``MODEL_SHA256`` variable of the
  compose call (:data:`MODEL_SHA256_REF`) and is written once, before the build;
- points the secrets at throw-away files when the project has none (a fresh clone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RUN_LABEL = "io.servegen.run"
APP = "app"
DOWNLOADER = "model-downloader"
MODEL_SERVER = "model-server"
MODEL_SERVER_PORT = 8765
MODEL_SERVER_DIR = "/tmp/servegen-demo"  # noqa: S108 - a path inside the container
#: A well-formed checksum for compose calls made before the real one is known (lint, build).
PLACEHOLDER_SHA256 = "0" * 64
#: The overlay's value of MODEL_SHA256: interpolated by compose from its environment.
MODEL_SHA256_REF = "${MODEL_SHA256}"


@dataclass(frozen=True)
class OverlaySpec:
    """Everything the overlay depends on; the overlay is a pure function of it."""

    run_id: str
    app_image: str
    api_port: int
    services: tuple[str, ...]
    networks: tuple[str, ...] = ("default",)
    volumes: tuple[str, ...] = ()
    build_args: dict[str, str] = field(default_factory=dict)
    secret_files: dict[str, Path] = field(default_factory=dict)
    #: services whose environment names MODEL_URL or MODEL_SHA256 (they all get ours)
    model_env_services: tuple[str, ...] = (DOWNLOADER,)
    #: services that run the app's image (the app and the downloader): they get our tag
    app_image_services: tuple[str, ...] = (APP,)

    @property
    def labels(self) -> dict[str, str]:
        """The label that marks everything this run creates."""
        return {RUN_LABEL: self.run_id}

    @property
    def model_url(self) -> str:
        """Where the downloader fetches the demo model inside the compose network."""
        return f"http://{MODEL_SERVER}:{MODEL_SERVER_PORT}/model.pt"


class Override:
    """A sequence written with compose's ``!override`` tag (replace, do not merge)."""

    def __init__(self, items: list[Any]):
        self.items = items


class _Dumper(yaml.SafeDumper):
    """A private dumper, so registering ``!override`` does not change PyYAML globally."""


def _represent_override(dumper: yaml.SafeDumper, value: Override) -> yaml.Node:
    return dumper.represent_sequence("!override", value.items)


_Dumper.add_representer(Override, _represent_override)


def services_of(model: dict[str, Any]) -> dict[str, Any]:
    """Return the services of a ``compose config --format json`` model."""
    services = model.get("services") or {}
    return services if isinstance(services, dict) else {}


def spec_fields_from_model(model: dict[str, Any]) -> dict[str, Any]:
    """Services, networks, volumes and model-env users of the project's compose model."""
    services = services_of(model)
    model_env = [
        name
        for name, svc in services.items()
        if isinstance(svc, dict)
        and isinstance(svc.get("environment"), dict)
        and ({"MODEL_URL", "MODEL_SHA256"} & set(svc["environment"]))
    ]
    if DOWNLOADER in services and DOWNLOADER not in model_env:
        model_env.append(DOWNLOADER)
    networks = tuple(sorted(set(model.get("networks") or {}) | {"default"}))
    app_image = (services.get(APP) or {}).get("image")
    same_image = [
        name
        for name, svc in services.items()
        if name == APP or (app_image and isinstance(svc, dict) and svc.get("image") == app_image)
    ]
    return {
        "app_image_services": tuple(same_image),
        "services": tuple(services),
        "networks": networks,
        "volumes": tuple(model.get("volumes") or {}),
        "model_env_services": tuple(model_env),
    }


def build_overlay(spec: OverlaySpec) -> dict[str, Any]:
    """Return the overlay as a plain mapping (with one :class:`Override` for the app's ports)."""
    services: dict[str, Any] = {name: {"labels": dict(spec.labels)} for name in spec.services}
    app = services.setdefault(APP, {"labels": dict(spec.labels)})
    # Empty host port = the engine picks a free one; 127.0.0.1 keeps it off the network.
    app["ports"] = Override([f"127.0.0.1::{spec.api_port}"])
    app["build"] = {"labels": dict(spec.labels)}
    if spec.build_args:
        app["build"]["args"] = dict(spec.build_args)
    model_env = {"MODEL_URL": spec.model_url, "MODEL_SHA256": MODEL_SHA256_REF}
    for name in spec.model_env_services:
        services.setdefault(name, {"labels": dict(spec.labels)})["environment"] = dict(model_env)
    if DOWNLOADER in services:
        services[DOWNLOADER]["depends_on"] = {MODEL_SERVER: {"condition": "service_healthy"}}
    for name in spec.app_image_services:
        # The run's own tag, so the image is found and removed by name after the run.
        services.setdefault(name, {"labels": dict(spec.labels)})["image"] = spec.app_image
    services[MODEL_SERVER] = _model_server(spec)
    overlay: dict[str, Any] = {
        "services": services,
        "networks": {name: {"labels": dict(spec.labels)} for name in spec.networks},
    }
    if spec.volumes:
        overlay["volumes"] = {name: {"labels": dict(spec.labels)} for name in spec.volumes}
    if spec.secret_files:
        overlay["secrets"] = {
            name: {"file": str(path)} for name, path in sorted(spec.secret_files.items())
        }
    return overlay


def _model_server(spec: OverlaySpec) -> dict[str, Any]:
    """Describe a one-file HTTP server for the demo model, run from the app image.

    Making the model inside the compose network (instead of mounting a host file) keeps the
    run independent of where the engine runs, and exercises the image's own maker script.
    """
    out = f"{MODEL_SERVER_DIR}/model.pt"
    script = (
        f"python scripts/make_demo_model.py --out {out} && exec python -m http.server "
        f"{MODEL_SERVER_PORT} --bind 0.0.0.0 --directory {MODEL_SERVER_DIR}"
    )
    probe = (
        "import urllib.request as u; "
        f"u.urlopen('http://127.0.0.1:{MODEL_SERVER_PORT}/model.pt', timeout=3).read()"
    )
    return {
        "image": spec.app_image,
        "entrypoint": ["sh", "-c"],
        "command": [script],
        "labels": dict(spec.labels),
        "restart": "no",
        # http.server as PID 1 ignores SIGTERM, which would cost the stop timeout at every
        # tear-down; SIGINT stops it at once (KeyboardInterrupt).
        "stop_signal": "SIGINT",
        "healthcheck": {
            "test": ["CMD", "python", "-c", probe],
            "interval": "2s",
            "timeout": "5s",
            "retries": 60,
            "start_period": "60s",
        },
    }


def dump_overlay(overlay: dict[str, Any]) -> str:
    """Return the overlay as YAML text, with the ``!override`` tag where needed."""
    header = "# Written by `servegen test` for one run; layered over the project's compose.yaml.\n"
    body = yaml.dump(overlay, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return header + body


def write_overlay(path: Path, spec: OverlaySpec) -> Path:
    """Write the overlay for ``spec`` to ``path`` and return the path."""
    path.write_text(dump_overlay(build_overlay(spec)), encoding="utf-8")
    return path
