"""The smoke overlay: a compose file the harness writes in its scratch folder, not the project.

Layered after the project's ``compose.yaml`` and ``compose.demo.yaml`` (whose
``model-server`` makes the demo model with the image's own script and serves it, with
its sha256, to the downloader: the real download-and-verify path runs) it
- labels every service, network and volume with ``io.servegen.run=<run id>`` so clean-up
  can find whatever the run made, even after a crash;
- publishes the stack's front on 127.0.0.1: the ``proxy`` service in front of the app's
  replicas, or the app itself in a project that has no proxy (``!override`` replaces
  the project's port list instead of appending to it), on the port in the compose
  call's ``SERVEGEN_APP_PORT``
  (:data:`HOST_PORT_REF`): empty, so the engine picks a free one, unless the run pins
  it (``--drills``: the engine gives an ephemeral port up again when the container
  restarts, and the crash drill needs an address that outlives a restart); the proxy
  listens on the app's port, so the same container port is published either way;
- passes the build arguments of ``--base-image`` and ``--wheelhouse``;
- hands the demo model's sha256, which the harness learned from the built image, to
  every service that reads ``MODEL_SHA256`` (the downloader and the app): both check the
  served bytes against it, so a model server that serves other bytes than the image's
  script makes fails the run. The sha256 is only known once the image is built, so the
  overlay takes it from the ``MODEL_SHA256`` variable of the compose call
  (:data:`MODEL_SHA256_REF`) and is written once, before the build;
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
#: The reverse proxy in front of the app's replicas; it holds the published port.
PROXY = "proxy"
MODEL_SERVER = "model-server"
#: A well-formed checksum for compose calls made before the real one is known (lint, build).
PLACEHOLDER_SHA256 = "0" * 64
#: The overlay's value of MODEL_SHA256: interpolated by compose from its environment.
MODEL_SHA256_REF = "${MODEL_SHA256}"
#: The compose variable with the app's host port; empty lets the engine pick one.
HOST_PORT_VARIABLE = "SERVEGEN_APP_PORT"
HOST_PORT_REF = "${" + HOST_PORT_VARIABLE + ":-}"


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
    #: services whose environment names MODEL_SHA256 (they all get ours)
    model_env_services: tuple[str, ...] = (DOWNLOADER,)
    #: services that run the app's image (the app and the downloader): they get our tag
    app_image_services: tuple[str, ...] = (APP,)
    #: the service published on the host: the proxy, or the app when there is none
    front: str = APP

    @property
    def labels(self) -> dict[str, str]:
        """The label that marks everything this run creates."""
        return {RUN_LABEL: self.run_id}


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
        and "MODEL_SHA256" in svc["environment"]
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
        "front": front_service(services),
        "app_image_services": tuple(same_image),
        "services": tuple(services),
        "networks": networks,
        "volumes": tuple(model.get("volumes") or {}),
        "model_env_services": tuple(model_env),
    }


def front_service(services: dict[str, Any]) -> str:
    """Return the service a project publishes: its proxy, or the app when it has none."""
    return PROXY if PROXY in services else APP


def build_overlay(spec: OverlaySpec) -> dict[str, Any]:
    """Return the overlay as a plain mapping (with one :class:`Override` for the front's ports)."""
    services: dict[str, Any] = {name: {"labels": dict(spec.labels)} for name in spec.services}
    app = services.setdefault(APP, {"labels": dict(spec.labels)})
    front = services.setdefault(spec.front, {"labels": dict(spec.labels)})
    # Empty host port = the engine picks a free one; 127.0.0.1 keeps it off the network.
    front["ports"] = Override([f"127.0.0.1:{HOST_PORT_REF}:{spec.api_port}"])
    app["build"] = {"labels": dict(spec.labels)}
    if spec.build_args:
        app["build"]["args"] = dict(spec.build_args)
    for name in spec.model_env_services:
        service = services.setdefault(name, {"labels": dict(spec.labels)})
        service["environment"] = {"MODEL_SHA256": MODEL_SHA256_REF}
    for name in spec.app_image_services:
        # The run's own tag, so the image is found and removed by name after the run.
        services.setdefault(name, {"labels": dict(spec.labels)})["image"] = spec.app_image
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


def dump_overlay(overlay: dict[str, Any]) -> str:
    """Return the overlay as YAML text, with the ``!override`` tag where needed."""
    header = "# Written by `servegen test` for one run; layered over the project's compose.yaml.\n"
    body = yaml.dump(overlay, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return header + body


def write_overlay(path: Path, spec: OverlaySpec) -> Path:
    """Write the overlay for ``spec`` to ``path`` and return the path."""
    path.write_text(dump_overlay(build_overlay(spec)), encoding="utf-8")
    return path
