"""The default CPU project, built offline with BuildKit and run on a real engine.

One build per module: the project is rendered, a wheelhouse (downloaded once per
requirements hash and cached outside the repository) fills ``wheels/``, weights and a
``.env`` are planted in the project, and ``docker compose build`` builds it with the
stand-in ``python:3.11-slim`` and no package index. The tests then look inside the
image, rebuild after a code-only change, start the service and its health check, and
bring the whole compose stack up. Every image, container, volume and network they
create is removed at the end.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from container_helpers import (
    COMPAT,
    TEST_LABEL,
    clean_env,
    compose_command,
    image_python_matches_host,
    render,
    wheelhouse_for,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUN_ID = f"c{os.getpid()}-{secrets.token_hex(3)}"
APP_UID = "10001"
#: Planted in the project before the build; none may reach the image.
PLANTED_WEIGHTS = [
    "model.pt",
    "models/planted-model.safetensors",
    "src/{pkg}/planted-weights.pt",
    "examples/planted-model.onnx",
    "scripts/planted-checkpoint.ckpt",
]
WEIGHT_SUFFIXES = (".pt", ".pt2", ".onnx", ".safetensors", ".ckpt")


@dataclass
class Built:
    """The project and the image built from it."""

    project: Path
    package: str
    tag: str
    env: dict[str, str]  # the compose environment used for the build
    planted_secret: str
    db_password: str
    build_seconds: float
    seed: Path  # mounted at /seed in the downloader; holds the demo model


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def compose(
    project: Path, env: dict[str, str], *args: str, check: bool = True, demo: bool = False
) -> Any:
    """Run Compose v2 for ``project`` with the test overlay; return the completed process.

    ``demo`` layers the project's compose.demo.yaml (its demo model server) as well.
    """
    files = [project / "compose.yaml"]
    if demo:
        files += [project / "compose.demo.yaml", project.parent / "test-overlay-demo.yaml"]
    files.append(project.parent / "test-overlay.yaml")
    result = subprocess.run(
        [
            *compose_command(),
            "--project-directory",
            str(project),
            "-p",
            f"servegen-{RUN_ID}",
            *(arg for path in files for arg in ("-f", str(path))),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"compose {' '.join(args)}:\n{result.stderr[-4000:]}"
    return result


def build(built_env: dict[str, str], project: Path) -> float:
    """Build the app image with compose (BuildKit); return the seconds it took."""
    start = time.monotonic()
    compose(project, built_env, "build", "app")
    return time.monotonic() - start


def write_overlay(project: Path, seed: Path) -> None:
    """The test's own compose overlay: labels, and a folder the downloader can read."""
    overlay = {
        "services": {
            "app": {"build": {"labels": {TEST_LABEL: RUN_ID}}, "labels": {TEST_LABEL: RUN_ID}},
            "db": {"labels": {TEST_LABEL: RUN_ID}},
            "model-downloader": {
                "labels": {TEST_LABEL: RUN_ID},
                "volumes": [{"type": "bind", "source": str(seed), "target": "/seed"}],
            },
        }
    }
    # JSON is YAML: no YAML writer needed.
    (project.parent / "test-overlay.yaml").write_text(json.dumps(overlay), encoding="utf-8")
    demo = {"services": {"model-server": {"labels": {TEST_LABEL: RUN_ID}}}}
    (project.parent / "test-overlay-demo.yaml").write_text(json.dumps(demo), encoding="utf-8")


@pytest.fixture(scope="module")
def built(
    docker_client: Any, standin_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    """Render, plant, fill the wheelhouse and build the default CPU image once."""
    version = docker_client.containers.run(
        standin_images["python"], ["python", "--version"], remove=True, labels={TEST_LABEL: RUN_ID}
    ).decode()
    if not image_python_matches_host(version):
        pytest.fail(f"the wheelhouse is downloaded by this Python; the image has {version}")
    root = tmp_path_factory.mktemp("image")
    project = render({}, root)
    package = next((project / "src").iterdir()).name
    for wheel in wheelhouse_for(project / "requirements.txt").iterdir():
        shutil.copy2(wheel, project / "wheels" / wheel.name)
    for rel in PLANTED_WEIGHTS:
        path = project / rel.format(pkg=package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"planted weights")
    planted_secret = f"planted-{secrets.token_hex(16)}"
    (project / ".env").write_text(f"PLANTED_SECRET={planted_secret}\n", encoding="utf-8")
    seed = root / "seed"
    seed.mkdir()
    seed.chmod(0o777)  # the image's user writes the demo model here
    write_overlay(project, seed)
    tag = f"servegen-test/{project.name}:{RUN_ID}"
    env = clean_env(
        APP_IMAGE=tag,
        BASE_IMAGE=standin_images["python"],
        MYSQL_IMAGE=standin_images["mysql"],
        PROXY_IMAGE=standin_images["haproxy"],
        BUILD_PIP_NO_INDEX="1",
    )
    try:
        seconds = build(env, project)
        yield Built(
            project=project,
            package=package,
            tag=tag,
            env=env,
            planted_secret=planted_secret,
            db_password=(project / "secrets" / "db_password.txt").read_text(encoding="utf-8"),
            build_seconds=seconds,
            seed=seed,
        )
    finally:
        compose(project, env, "down", "--volumes", "--remove-orphans", check=False)
        for container in docker_client.containers.list(
            all=True, filters={"label": f"{TEST_LABEL}={RUN_ID}"}
        ):
            container.remove(force=True)
        for image in docker_client.images.list(filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
            docker_client.images.remove(image.id, force=True)


@pytest.fixture(scope="module")
def demo_sha256(built: Built, docker_client: Any) -> str:
    """Write the project's demo model into the seed folder with the image; its sha256."""
    out = run(
        docker_client,
        built.tag,
        ["python", "scripts/make_demo_model.py", "--out", "/seed/model.pt"],
        volumes={str(built.seed): {"bind": "/seed", "mode": "rw"}},
        stderr=False,
    )
    return out.strip().splitlines()[-1]


def run(docker_client: Any, image: str, command: list[str], **kwargs: Any) -> str:
    """Run a command in a fresh container of ``image``; return its output."""
    out: bytes = docker_client.containers.run(
        image, command, remove=True, labels={TEST_LABEL: RUN_ID}, **kwargs
    )
    return out.decode()


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (for streaming tar reads)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def image_files(docker_client: Any, image: str) -> dict[str, bytes | None]:
    """Every path in the image's file system; contents of the files under /app."""
    container = docker_client.containers.create(image, labels={TEST_LABEL: RUN_ID})
    files: dict[str, bytes | None] = {}
    try:
        stream = io.BufferedReader(_ChunkReader(container.export(chunk_size=1 << 20)))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = member.name.rstrip("/")
                content = None
                if member.isfile() and name.startswith("app/"):
                    extracted = tar.extractfile(member)
                    content = extracted.read() if extracted else None
                files[name] = content
    finally:
        container.remove(force=True)
    return files


# ---------------------------------------------------------------------------------


def test_image_runs_as_a_fixed_non_root_user(built: Built, docker_client: Any) -> None:
    attrs = docker_client.images.get(built.tag).attrs
    assert attrs["Config"]["User"] == f"{APP_UID}:{APP_UID}"
    assert run(docker_client, built.tag, ["id", "-u"]).strip() == APP_UID
    assert run(docker_client, built.tag, ["id", "-g"]).strip() == APP_UID
    assert attrs["Config"]["Healthcheck"]["Test"] == [
        "CMD",
        "python",
        "-m",
        f"{built.package}.healthcheck",
    ]
    assert attrs["Config"]["Cmd"] == ["python", "-m", built.package]
    assert attrs["Config"]["StopSignal"] == "SIGTERM"
    print(f"\nimage {built.tag}: {attrs['Size'] / 1e6:.0f} MB, built in {built.build_seconds:.1f}s")


def test_image_holds_no_weights_env_secrets_pip_or_compiler(
    built: Built, docker_client: Any
) -> None:
    files = image_files(docker_client, built.tag)
    assert f"app/src/{built.package}/app.py" in files, "the scan sees the image's files"
    assert "app/scripts/download_model.py" in files
    names = {path.rsplit("/", 1)[-1] for path in files}
    planted = {rel.rsplit("/", 1)[-1] for rel in PLANTED_WEIGHTS}
    assert not planted & names, "a planted weight file reached the image"
    weights = [p for p in files if p.endswith(WEIGHT_SUFFIXES)]
    assert not weights, weights
    site = next(p for p in files if p.endswith("/site-packages") and p.startswith("opt/venv/"))
    stray_pth = [p for p in files if p.endswith(".pth") and p.rsplit("/", 1)[0] != site]
    assert not stray_pth, stray_pth
    assert not [p for p in files if p.rsplit("/", 1)[-1].startswith(".env")]
    assert not {"db_password.txt", "db_root_password.txt"} & names
    assert not [p for p in files if p == "app/secrets" or p.startswith("app/secrets/")]
    # What the build added on top of the base image (which has its own ensurepip wheels).
    base = image_files(docker_client, built.env["BASE_IMAGE"])
    added = [p for p in files if p not in base]
    assert not [p for p in added if "/.cache/pip" in f"/{p}"], "pip cache in the image"
    assert not [p for p in added if p.endswith(".whl") or p == "wheels"], "wheels in the image"
    assert f"{site}/pip" not in files, "pip is removed from the runtime venv"
    tools = ("usr/bin/gcc", "usr/bin/cc", "usr/bin/make", "usr/bin/strip", "usr/bin/ld")
    assert not [p for p in files if p in tools], "a compiler or binutils in the runtime image"
    for path, content in files.items():
        if content is not None:
            assert built.planted_secret.encode() not in content, path
            assert built.db_password.encode() not in content, path


def test_image_libraries_carry_no_symbol_tables(built: Built, docker_client: Any) -> None:
    # The project's own scripts/strip_symbols.py, run in the image, finds nothing left to
    # strip. (binutils, installed in the builder stage for it, is checked absent below.)
    probe = (
        "import sys, sysconfig; from pathlib import Path; sys.path.insert(0, '/app/scripts'); "
        "import strip_symbols as s; site = Path(sysconfig.get_path('purelib')); "
        "print(len(list(site.rglob('*.so*'))), [str(p) for p in s.candidates(site)])"
    )
    count, left = run(docker_client, built.tag, ["python", "-c", probe]).split(" ", 1)
    assert int(count) > 20, "the scan sees the venv's compiled libraries"
    assert left.strip() == "[]", f"still carrying symbols: {left}"


def test_code_change_rebuilds_only_the_code_layer(built: Built, docker_client: Any) -> None:
    before = docker_client.images.get(built.tag).attrs["RootFS"]["Layers"]
    app_py = built.project / "src" / built.package / "app.py"
    original = app_py.read_text(encoding="utf-8")
    app_py.write_text(original + "\n# a code-only change\n", encoding="utf-8")
    try:
        seconds = build(built.env, built.project)
    finally:
        app_py.write_text(original, encoding="utf-8")
    after = docker_client.images.get(built.tag).attrs["RootFS"]["Layers"]
    assert len(after) == len(before)
    assert after[:-1] == before[:-1], "base, user, venv and other layers are reused"
    assert after[-1] != before[-1], "the code layer holds the change"
    print(f"\ncode-only rebuild: {seconds:.1f}s")


def test_image_healthcheck_reports_healthy_and_sigterm_stops_cleanly(
    built: Built, docker_client: Any, demo_sha256: str
) -> None:
    container = docker_client.containers.run(
        built.tag,
        detach=True,
        labels={TEST_LABEL: RUN_ID},
        environment={
            "MODEL_PATH": "/seed/model.pt",
            "MODEL_SHA256": demo_sha256,
            "DB_ENABLED": "false",
        },
        volumes={str(built.seed): {"bind": "/seed", "mode": "ro"}},
        read_only=True,
        tmpfs={"/tmp": ""},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        # An empty test keeps the image's own HEALTHCHECK command; only the timing changes.
        healthcheck={"test": [], "interval": 1_000_000_000, "start_period": 60_000_000_000},
    )
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline:
            container.reload()
            status = container.attrs["State"].get("Health", {}).get("Status")
            if status in ("healthy", "unhealthy") or container.status == "exited":
                break
            time.sleep(1)
        assert status == "healthy", container.logs(tail=30).decode()
        log = container.attrs["State"]["Health"]["Log"]
        assert log and log[-1]["ExitCode"] == 0
        # The default project (a safetensors state_dict) starts without a single warning.
        output = container.logs().decode()
        assert "Warning" not in output and "deprecated" not in output.lower(), output
        container.stop(timeout=30)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0, "graceful exit on SIGTERM"
    finally:
        container.remove(force=True)


def test_compose_stack_needs_a_model_url_then_comes_up_healthy(
    built: Built, docker_client: Any, demo_sha256: str
) -> None:
    port = free_port()
    env = {**built.env, "APP_PORT": str(port)}
    # Without MODEL_URL the downloader stops with a message and the app never starts.
    result = compose(built.project, env, "up", "--detach", "--wait", check=False)
    assert result.returncode != 0
    assert "model-downloader" in result.stderr
    logs = compose(built.project, env, "logs", "model-downloader").stdout
    assert "MODEL_URL" in logs
    app_id = compose(built.project, env, "ps", "--all", "--quiet", "app").stdout.strip()
    if app_id:
        started = docker_client.containers.get(app_id).attrs["State"]["StartedAt"]
        assert started.startswith("0001-"), "the app must not start without a model"

    # With the model's URL and checksum the whole stack becomes healthy.
    env.update(MODEL_URL="file:///seed/model.pt", MODEL_SHA256=demo_sha256)
    compose(built.project, env, "up", "--detach", "--wait", "--wait-timeout", "180")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
        assert response.status == 200
        body = json.loads(response.read())
    assert body["ready"] is True
    assert body["db"] == "up", "the app logs in to MySQL with the secret file's password"
    compose(built.project, env, "down", "--volumes")


def test_the_demo_stack_needs_no_env_file_and_serves_predictions(built: Built) -> None:
    # What `make demo` runs: compose.yaml plus compose.demo.yaml, no .env, no MODEL_URL.
    port = free_port()
    env = {**built.env, "APP_PORT": str(port)}
    env.pop("MODEL_URL", None)
    env.pop("MODEL_SHA256", None)
    (built.project / ".env").rename(built.project / ".env.planted")  # no .env at all
    try:
        compose(built.project, env, "up", "--detach", "--wait", "--wait-timeout", "180", demo=True)
        logs = compose(built.project, env, "logs", "model-downloader", demo=True).stdout
        assert "expected sha256" in logs and "saved /models/" in logs, logs
        body = (built.project / "examples" / "predict_request.json").read_bytes()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=body,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            answer = json.loads(response.read())
        assert len(answer["outputs"]) == len(json.loads(body)["inputs"])
    finally:
        compose(built.project, env, "down", "--volumes", check=False, demo=True)
        (built.project / ".env.planted").rename(built.project / ".env")


def test_offline_build_without_wheels_stops_with_a_hint(
    docker_client: Any, standin_images: dict[str, str], tmp_path: Path
) -> None:
    project = render({}, tmp_path)
    seed = tmp_path / "seed"
    seed.mkdir()
    write_overlay(project, seed)
    env = clean_env(
        APP_IMAGE=f"servegen-test/no-wheels:{RUN_ID}",
        BASE_IMAGE=standin_images["python"],
        BUILD_PIP_NO_INDEX="1",
    )
    try:
        result = compose(project, env, "build", "app", check=False)
        assert result.returncode != 0
        assert "PIP_NO_INDEX is set but wheels/ holds no wheels" in result.stdout + result.stderr
    finally:
        for image in docker_client.images.list(filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
            if f"servegen-test/no-wheels:{RUN_ID}" in image.tags:
                docker_client.images.remove(image.id, force=True)


def test_cuda_variant_refuses_a_cpu_build_of_torch(
    docker_client: Any, standin_images: dict[str, str], tmp_path: Path
) -> None:
    # No CUDA wheels here; the CPU wheelhouse proves the CUDA Dockerfile builds through
    # BuildKit up to its check, and that the check stops a CPU torch from shipping.
    project = render({"accelerator": "cuda"}, tmp_path)
    for wheel in wheelhouse_for(project / "requirements.txt").iterdir():
        shutil.copy2(wheel, project / "wheels" / wheel.name)
    seed = tmp_path / "seed"
    seed.mkdir()
    write_overlay(project, seed)
    tag = f"servegen-test/cuda:{RUN_ID}"
    env = clean_env(
        APP_IMAGE=tag,
        BASE_IMAGE=standin_images["python"],
        BUILD_PIP_NO_INDEX="1",
        # The CPU index's value keeps the install step identical to the CPU build's, so
        # BuildKit reuses it.
        BUILD_PIP_EXTRA_INDEX_URL=COMPAT["2.13.0"]["cpu_index"],
    )
    try:
        result = compose(project, env, "build", "app", check=False)
        assert result.returncode != 0
        assert "error: expected a CUDA build of torch" in result.stdout + result.stderr
    finally:
        for image in docker_client.images.list(filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
            if tag in image.tags:
                docker_client.images.remove(image.id, force=True)
