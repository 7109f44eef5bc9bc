"""The smoke overlay: labels on everything, a loopback port, demo model, secrets."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from generator.harness.overlay import (
    MODEL_SERVER,
    PROXY,
    RUN_LABEL,
    OverlaySpec,
    build_overlay,
    dump_overlay,
    spec_fields_from_model,
    write_overlay,
)

SHA = "ab" * 32


class _Loader(yaml.SafeLoader):
    """Reads compose's ``!override`` tag back as a marked list."""


_Loader.add_constructor(
    "!override", lambda loader, node: {"!override": loader.construct_sequence(node)}
)


def _spec(**changes: Any) -> OverlaySpec:
    fields: dict[str, Any] = {
        "run_id": "sgtest-1234abcd",
        "app_image": "sgtest-1234abcd-demo:smoke",
        "api_port": 8123,
        "services": ("db", "model-downloader", "app", MODEL_SERVER, PROXY),
        "networks": ("default",),
        "volumes": ("db-data", "models"),
        "model_env_services": ("model-downloader", "app"),
        "app_image_services": ("model-downloader", "app", MODEL_SERVER),
        "front": PROXY,
    }
    fields.update(changes)
    return OverlaySpec(**fields)


def _parsed(spec: OverlaySpec) -> dict[str, Any]:
    parsed = yaml.load(dump_overlay(build_overlay(spec)), Loader=_Loader)
    assert isinstance(parsed, dict)
    return parsed


def test_every_service_network_volume_and_the_build_carry_the_run_label() -> None:
    overlay = _parsed(_spec())
    label = {RUN_LABEL: "sgtest-1234abcd"}
    for name in ("db", "model-downloader", "app", MODEL_SERVER, PROXY):
        assert overlay["services"][name]["labels"] == label, name
    assert overlay["networks"] == {"default": {"labels": label}}
    assert overlay["volumes"] == {"db-data": {"labels": label}, "models": {"labels": label}}
    assert overlay["services"]["app"]["build"]["labels"] == label


def test_proxy_port_replaces_the_projects_with_a_loopback_port_the_run_may_pin() -> None:
    text = dump_overlay(build_overlay(_spec()))
    assert "ports: !override" in text
    services = _parsed(_spec())["services"]
    # Compose fills the host port in from SERVEGEN_APP_PORT; empty lets the engine pick.
    assert services[PROXY]["ports"] == {"!override": ["127.0.0.1:${SERVEGEN_APP_PORT:-}:8123"]}
    # The app's replicas publish nothing: they are reached through the proxy.
    assert "ports" not in services["app"]


def test_a_project_without_a_proxy_gets_its_app_published() -> None:
    services = _parsed(_spec(services=("db", "app"), front="app"))["services"]
    assert services["app"]["ports"] == {"!override": ["127.0.0.1:${SERVEGEN_APP_PORT:-}:8123"]}
    assert PROXY not in services


def test_the_downloader_and_the_app_get_the_demo_models_sha() -> None:
    services = _parsed(_spec())["services"]
    # The checksum is known only after the build: compose fills it in from MODEL_SHA256.
    for name in ("model-downloader", "app"):
        assert services[name]["environment"] == {"MODEL_SHA256": "${MODEL_SHA256}"}
    # The project's own model server (compose.demo.yaml) runs the run's image too.
    for name in ("model-downloader", MODEL_SERVER):
        assert services[name]["image"] == services["app"]["image"] == "sgtest-1234abcd-demo:smoke"
    assert "environment" not in services[MODEL_SERVER]


def test_build_args_only_when_asked_for() -> None:
    assert "args" not in _parsed(_spec())["services"]["app"]["build"]
    args = {"BASE_IMAGE": "local/python:3.11", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels"}
    assert _parsed(_spec(build_args=args))["services"]["app"]["build"]["args"] == args


def test_secrets_point_at_throwaway_files_only_when_given(tmp_path: Path) -> None:
    assert "secrets" not in _parsed(_spec())
    files = {"db_password": tmp_path / "a.txt", "db_root_password": tmp_path / "b.txt"}
    assert _parsed(_spec(secret_files=files))["secrets"] == {
        "db_password": {"file": str(tmp_path / "a.txt")},
        "db_root_password": {"file": str(tmp_path / "b.txt")},
    }


def test_spec_fields_come_from_the_compose_model() -> None:
    model = {
        "services": {
            "db": {"environment": {"MYSQL_DATABASE": "x"}},
            "model-downloader": {"environment": {"MODEL_URL": "", "MODEL_SHA256": ""}},
            "app": {"environment": {"MODEL_SHA256": ""}},
        },
        "networks": {"default": {}, "backend": {}},
        "volumes": {"db-data": {}, "models": {}},
    }
    fields = spec_fields_from_model(model)
    assert fields["front"] == "app"  # no proxy: the app is published
    assert spec_fields_from_model({"services": {"app": {}, PROXY: {}}})["front"] == PROXY
    assert fields["services"] == ("db", "model-downloader", "app")
    assert fields["networks"] == ("backend", "default")
    assert fields["volumes"] == ("db-data", "models")
    assert fields["model_env_services"] == ("model-downloader", "app")
    assert fields["app_image_services"] == ("app",)


def _merged(
    project_dir: Path, compose_command: tuple[str, ...], overlay: Path, **env: str
) -> dict[str, Any]:
    """``compose config`` of the project's files and the overlay, with ``env`` set."""
    done = subprocess.run(
        [
            *compose_command,
            "--project-name",
            "sgtest-unit",
            "--project-directory",
            str(project_dir),
            "-f",
            str(project_dir / "compose.yaml"),
            "-f",
            str(project_dir / "compose.demo.yaml"),
            "-f",
            str(overlay),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "MODEL_SHA256": SHA, **env},
    )
    assert done.returncode == 0, done.stderr
    model = json.loads(done.stdout)
    assert isinstance(model, dict)
    return model


def _ports(model: dict[str, Any]) -> list[tuple[str, str, int]]:
    assert "ports" not in model["services"]["app"]
    ports = model["services"][PROXY]["ports"]
    return [(p["host_ip"], p.get("published", ""), p["target"]) for p in ports]


def test_compose_merges_the_overlay_into_a_rendered_project(
    project_dir: Path, compose_command: tuple[str, ...], tmp_path: Path
) -> None:
    """The real Compose binary reads the overlay as intended (no engine needed)."""
    overlay = write_overlay(tmp_path / "overlay.yaml", _spec(api_port=8000))
    model = _merged(project_dir, compose_command, overlay, SERVEGEN_APP_PORT="")
    app = model["services"]["app"]
    assert _ports(model) == [("127.0.0.1", "", 8000)]  # the engine picks the host port
    pinned = _merged(project_dir, compose_command, overlay, SERVEGEN_APP_PORT="41234")
    assert _ports(pinned) == [("127.0.0.1", "41234", 8000)]  # as --drills pins it
    assert app["image"] == "sgtest-1234abcd-demo:smoke"
    assert model["services"]["model-downloader"]["image"] == app["image"]
    for name in ("db", "model-downloader", "app", MODEL_SERVER, PROXY):
        assert model["services"][name]["labels"][RUN_LABEL] == "sgtest-1234abcd"
    for volume in model["volumes"].values():
        assert volume["labels"][RUN_LABEL] == "sgtest-1234abcd"
    assert model["networks"]["default"]["labels"][RUN_LABEL] == "sgtest-1234abcd"
    downloader = model["services"]["model-downloader"]
    assert downloader["environment"]["MODEL_SHA256"] == SHA
    assert model["services"]["app"]["environment"]["MODEL_SHA256"] == SHA
    assert downloader["depends_on"][MODEL_SERVER]["condition"] == "service_healthy"
    # The project's demo layer: its model server runs the run's image and serves the model.
    assert model["services"][MODEL_SERVER]["image"] == app["image"]
    assert downloader["environment"]["MODEL_URL"].startswith(f"http://{MODEL_SERVER}:8765/")
