"""Preflight: is there an engine, Compose v2, and enough disk? One clear line if not.

Each check raises :class:`EnvironmentMissing` (exit code 3) with a message that names what
to install or start, before the harness touches anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import EnvironmentMissing

#: Free space needed for a torch image build (the image alone is over 1 GB, and BuildKit
#: keeps its cache and the unpacked wheels beside it).
MIN_FREE_BYTES = 5 * 1024**3

#: ``!override`` in compose files arrived in Compose 2.24.
# Ref: https://docs.docker.com/reference/compose-file/merge/#replace-value
MIN_COMPOSE = (2, 24)

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Compose:
    """How to call Compose v2 here: ``docker compose`` or a standalone ``docker-compose``."""

    command: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class Environment:
    """What preflight found: a connected SDK client, the compose command, engine facts."""

    client: Any
    compose: Compose
    docker_host: str | None
    engine_version: str
    figures: dict[str, Any]
    #: the engine has the NVIDIA runtime (from the NVIDIA container toolkit)
    nvidia: bool = False


def connect(docker_host: str | None, timeout: float = 15.0) -> tuple[Any, dict[str, Any]]:
    """Connect to the engine (``docker_host`` or DOCKER_HOST) and return the client and info."""
    import docker  # imported here so that ``servegen --help`` works without the SDK

    where = docker_host or os.environ.get("DOCKER_HOST") or "the default socket"
    socket_path = _unix_socket(docker_host or os.environ.get("DOCKER_HOST"))
    if socket_path is not None and not socket_path.exists():
        # Checked before the SDK tries: its failed connect leaves a socket object unclosed.
        raise EnvironmentMissing(
            f"no Docker engine answers at {where} (no socket at {socket_path}): install "
            "Docker Engine and start it, or point --docker-host/DOCKER_HOST at a running engine"
        )
    client = None
    try:
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
        info = client.info()
    except Exception as exc:  # every way of not reaching the engine means the same here
        if client is not None:
            client.close()
        reason = _short_reason(exc)
        raise EnvironmentMissing(
            f"no Docker engine answers at {where} ({reason}): install Docker Engine and "
            "start it, or point --docker-host/DOCKER_HOST at a running engine"
        ) from None
    return client, info


def _unix_socket(host: str | None) -> Path | None:
    """Return the socket path of a ``unix://`` engine address (the default when unset)."""
    if not host:
        return Path("/var/run/docker.sock")
    return Path(host.removeprefix("unix://")) if host.startswith("unix://") else None


def _short_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    for marker in ("No such file or directory", "Connection refused", "Permission denied"):
        if marker in text:
            return marker
    return text[:120]


def parse_compose_version(text: str) -> tuple[int, int, int] | None:
    """Return the first ``X.Y[.Z]`` in a ``version`` answer, or None."""
    match = _VERSION.search(text)
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def find_compose(env: dict[str, str] | None = None, path: str | None = None) -> Compose:
    """Find Compose v2: the ``docker compose`` plugin first, then a standalone binary.

    ``path`` replaces PATH for the look-up (tests use it). Compose v1 is refused: it does
    not build with BuildKit and does not understand the overlay's merge tags.
    """
    candidates: list[tuple[str, ...]] = []
    docker_cli = shutil.which("docker", path=path)
    if docker_cli:
        candidates.append((docker_cli, "compose"))
    standalone = shutil.which("docker-compose", path=path)
    if standalone:
        candidates.append((standalone,))
    found_v1 = ""
    too_old = ""
    for command in candidates:
        answer = _ask_version(command, env)
        if answer is None:
            continue
        version = parse_compose_version(answer)
        if version is None:
            continue
        text = ".".join(map(str, version))
        if version[0] < 2:
            found_v1 = f"{' '.join(command)} is Compose {text} (v1)"
            continue
        if version[:2] < MIN_COMPOSE:
            too_old = f"{' '.join(command)} is Compose {text}"
            continue
        return Compose(command, text)
    need = f"Compose v2 (2.{MIN_COMPOSE[1]} or newer)"
    if too_old:
        raise EnvironmentMissing(f"{too_old}, too old: install {need}, the docker compose plugin")
    if found_v1:
        raise EnvironmentMissing(
            f"{found_v1}, which servegen does not support: install {need}, "
            "the docker compose plugin"
        )
    raise EnvironmentMissing(
        f"Docker Compose not found: install {need}, the docker compose plugin "
        "(or a standalone docker-compose v2)"
    )


def _ask_version(command: tuple[str, ...], env: dict[str, str] | None) -> str | None:
    try:
        done = subprocess.run(
            [*command, "version"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout + done.stderr


def check_disk(paths: list[Path], min_free: int = MIN_FREE_BYTES) -> dict[str, int]:
    """Free bytes under each existing path; too little anywhere is EnvironmentMissing."""
    free: dict[str, int] = {}
    for path in paths:
        if not path.exists():
            continue
        available = shutil.disk_usage(path).free
        free[str(path)] = available
        if available < min_free:
            raise EnvironmentMissing(
                f"only {available / 1024**3:.1f} GB free under {path}: free at least "
                f"{min_free / 1024**3:.0f} GB for the image build"
            )
    return free


def run_preflight(docker_host: str | None, project_dir: Path) -> Environment:
    """Run every check in order and return what the later steps need."""
    client, info = connect(docker_host)
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    compose = find_compose(env)
    # The engine's data directory is only checkable when the engine runs on this machine.
    root = Path(info.get("DockerRootDir") or "/var/lib/docker")
    free = check_disk([root, project_dir])
    figures: dict[str, Any] = {
        "engine": info.get("ServerVersion", "?"),
        "compose": compose.version,
        "free_disk_gb": round(min(free.values()) / 1024**3, 1) if free else None,
    }
    nvidia = "nvidia" in (info.get("Runtimes") or {})
    return Environment(
        client, compose, docker_host, str(info.get("ServerVersion")), figures, nvidia
    )


def check_gpu(env: Environment, accelerator: str) -> None:
    """Refuse a CUDA project on an engine without the NVIDIA runtime, before building."""
    if accelerator == "cuda" and not env.nvidia:
        raise EnvironmentMissing(
            "the project uses CUDA but the engine has no NVIDIA runtime: install the NVIDIA "
            "driver and the NVIDIA Container Toolkit, or test a CPU variant of the project"
        )
