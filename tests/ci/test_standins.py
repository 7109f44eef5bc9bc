"""The local stand-in images built by ci/setup-engine.sh behave like the official ones.

The MySQL stand-in must honour the official mysql image's interface (variables, their
``_FILE`` variants, ``mysqladmin ping``, first-run-only initialisation, clean SIGTERM);
the Python stand-in must give Python 3.11 with a working ``python -m venv``; the HAProxy
stand-in must read the official image's configuration path as its user, with its
entrypoint. Every
container and volume made here carries a label and is removed in ``finally`` blocks.
"""

from __future__ import annotations

import io
import secrets
import subprocess
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

pytestmark = pytest.mark.docker

LABEL = "org.servegen.test"
LABEL_VALUE = "ci-standins"
HEALTHCHECK = {
    # The health check that compose files for the official image use.
    "test": ["CMD", "mysqladmin", "ping", "-h", "127.0.0.1", "--silent"],
    "interval": 500_000_000,  # nanoseconds
    "timeout": 5_000_000_000,
    "retries": 120,
}


@pytest.fixture
def run_container(docker_client: Any) -> Iterator[Callable[..., Any]]:
    """Start labelled containers; remove them (and their volumes) afterwards."""
    started: list[Any] = []

    def run(image: str, **kwargs: Any) -> Any:
        labels = {LABEL: LABEL_VALUE, **kwargs.pop("labels", {})}
        container = docker_client.containers.run(image, detach=True, labels=labels, **kwargs)
        started.append(container)
        return container

    try:
        yield run
    finally:
        for container in started:
            try:
                container.remove(force=True, v=True)
            except Exception as exc:  # already gone is fine
                if "No such container" not in str(exc):
                    raise


@pytest.fixture
def volume(docker_client: Any) -> Iterator[str]:
    """A labelled named volume, removed afterwards with any container still using it."""
    vol = docker_client.volumes.create(
        name=f"servegen-test-{uuid.uuid4().hex[:12]}", labels={LABEL: LABEL_VALUE}
    )
    try:
        yield vol.name
    finally:
        for container in docker_client.containers.list(all=True, filters={"volume": vol.name}):
            container.remove(force=True)
        vol.remove(force=True)


def _logs(container: Any) -> str:
    return str(container.logs().decode("utf-8", "replace"))


def _wait_healthy(container: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] == "exited":
            pytest.fail(f"container exited ({state['ExitCode']}):\n{_logs(container)[-3000:]}")
        if state.get("Health", {}).get("Status") == "healthy":
            return
        time.sleep(0.3)
    pytest.fail(f"container not healthy within {timeout}s:\n{_logs(container)[-3000:]}")


def _host_port(container: Any) -> int:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["3306/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1"
    return int(binding["HostPort"])


def _connect(container: Any, user: str, password: str, database: str | None = None) -> Any:
    return pymysql.connect(
        host="127.0.0.1",
        port=_host_port(container),
        user=user,
        password=password,
        database=database,
        connect_timeout=10,
    )


def _mysql_env(**extra: str) -> dict[str, str]:
    return {
        "MYSQL_ROOT_PASSWORD": "root-" + secrets.token_hex(8),
        "MYSQL_DATABASE": "serve_db",
        "MYSQL_USER": "serve",
        "MYSQL_PASSWORD": "pw'with\\quote-" + secrets.token_hex(4),
        **extra,
    }


MYSQL_PORTS = {"3306/tcp": ("127.0.0.1", None)}


def test_mysql_standin_honours_env_vars(
    standin_images: dict[str, str], run_container: Callable[..., Any]
) -> None:
    env = _mysql_env()
    db = run_container(
        standin_images["mysql"], environment=env, ports=MYSQL_PORTS, healthcheck=HEALTHCHECK
    )
    # TCP must not answer while the entrypoint initialises: the first successful ping over
    # 127.0.0.1 comes after initialisation finished, so health checks cannot pass early.
    deadline = time.monotonic() + 90
    while True:
        assert time.monotonic() < deadline, _logs(db)[-3000:]
        result = db.exec_run(["mysqladmin", "ping", "-h", "127.0.0.1", "--silent"])
        if result.exit_code == 0:
            assert "initialisation complete" in _logs(db)
            break
        time.sleep(0.1)
    _wait_healthy(db)

    conn = _connect(db, env["MYSQL_USER"], env["MYSQL_PASSWORD"], env["MYSQL_DATABASE"])
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE predictions (request_id VARCHAR(64) PRIMARY KEY)")
            cur.execute("INSERT INTO predictions VALUES (%s)", ("req-1",))
            conn.commit()
            cur.execute("SELECT request_id FROM predictions")
            assert cur.fetchall() == (("req-1",),)
            cur.execute("SELECT @@character_set_server")
            assert cur.fetchone() == ("utf8mb4",)
            # The user's rights cover its own database only.
            with pytest.raises(pymysql.err.OperationalError):
                cur.execute("CREATE DATABASE other_db")
    finally:
        conn.close()

    root = _connect(db, "root", env["MYSQL_ROOT_PASSWORD"])
    try:
        with root.cursor() as cur:
            # No anonymous accounts: they would shadow the user on the local socket.
            cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User = ''")
            assert cur.fetchone() == (0,)
    finally:
        root.close()

    # The mysql client in the image works over the socket for the new user, as a
    # harness or a health check uses it (`mysql -u... -p... -e`).
    result = db.exec_run(
        [
            "mysql",
            f"-u{env['MYSQL_USER']}",
            f"-p{env['MYSQL_PASSWORD']}",
            "-N",
            "-e",
            "SELECT CURRENT_USER(); SELECT COUNT(*) FROM serve_db.predictions",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.output.decode().split() == ["serve@%", "1"]

    # Wrong password is refused.
    with pytest.raises(pymysql.err.OperationalError):
        _connect(db, env["MYSQL_USER"], "wrong")


def test_mysql_standin_reads_file_variants(
    standin_images: dict[str, str], run_container: Callable[..., Any], tmp_path: Path
) -> None:
    # Secret files usually end with a newline, which must not become part of the password.
    (tmp_path / "db_root_password").write_text("root-from-file\n")
    (tmp_path / "db_password").write_text("user-from-file\n")
    db = run_container(
        standin_images["mysql"],
        environment={
            "MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/db_root_password",
            "MYSQL_DATABASE": "app",
            "MYSQL_USER": "app",
            "MYSQL_PASSWORD_FILE": "/run/secrets/db_password",
        },
        volumes={str(tmp_path): {"bind": "/run/secrets", "mode": "ro"}},
        ports=MYSQL_PORTS,
        healthcheck=HEALTHCHECK,
    )
    _wait_healthy(db)
    for user, password, database in (
        ("app", "user-from-file", "app"),
        ("root", "root-from-file", None),
    ):
        conn = _connect(db, user, password, database)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT CURRENT_USER()")
                assert cur.fetchone() == (f"{user}@%",)
        finally:
            conn.close()


def test_mysql_standin_keeps_data_and_initialises_once(
    standin_images: dict[str, str], run_container: Callable[..., Any], volume: str
) -> None:
    env = _mysql_env()
    db = run_container(
        standin_images["mysql"],
        environment=env,
        volumes={volume: {"bind": "/var/lib/mysql", "mode": "rw"}},
        ports=MYSQL_PORTS,
        healthcheck=HEALTHCHECK,
    )
    _wait_healthy(db)
    conn = _connect(db, env["MYSQL_USER"], env["MYSQL_PASSWORD"], env["MYSQL_DATABASE"])
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE kept (v INT)")
            cur.execute("INSERT INTO kept VALUES (42)")
            conn.commit()
    finally:
        conn.close()

    # SIGTERM reaches the server as PID 1: a clean, quick shutdown with exit code 0.
    started = time.monotonic()
    db.stop(timeout=30)
    assert time.monotonic() - started < 20
    db.reload()
    assert db.attrs["State"]["ExitCode"] == 0, _logs(db)[-3000:]

    # A second container on the same data, with different variables: the data and the
    # original accounts survive; initialisation does not run again.
    env2 = {**env, "MYSQL_PASSWORD": "a-new-password", "MYSQL_ROOT_PASSWORD": "new-root"}
    db2 = run_container(
        standin_images["mysql"],
        environment=env2,
        volumes={volume: {"bind": "/var/lib/mysql", "mode": "rw"}},
        ports=MYSQL_PORTS,
        healthcheck=HEALTHCHECK,
    )
    _wait_healthy(db2)
    logs = _logs(db2)
    assert "already initialised" in logs
    assert "initialising database files" not in logs
    conn = _connect(db2, env["MYSQL_USER"], env["MYSQL_PASSWORD"], env["MYSQL_DATABASE"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT v FROM kept")
            assert cur.fetchall() == ((42,),)
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError):
        _connect(db2, env["MYSQL_USER"], "a-new-password")


def test_mysql_standin_refuses_to_start_without_root_password(
    standin_images: dict[str, str], run_container: Callable[..., Any]
) -> None:
    db = run_container(standin_images["mysql"], environment={"MYSQL_DATABASE": "x"})
    result = db.wait(timeout=60)
    assert result["StatusCode"] != 0
    assert "MYSQL_ROOT_PASSWORD" in _logs(db)


def test_mysql_standin_rejects_both_value_and_file(
    standin_images: dict[str, str], run_container: Callable[..., Any]
) -> None:
    db = run_container(
        standin_images["mysql"],
        environment={"MYSQL_ROOT_PASSWORD": "a", "MYSQL_ROOT_PASSWORD_FILE": "/etc/hostname"},
    )
    assert db.wait(timeout=60)["StatusCode"] != 0
    assert "both MYSQL_ROOT_PASSWORD and MYSQL_ROOT_PASSWORD_FILE" in _logs(db)


def test_python_standin_gives_python_311_with_venv(
    standin_images: dict[str, str], run_container: Callable[..., Any]
) -> None:
    script = (
        "python --version"
        " && python -m venv /opt/venv"
        " && /opt/venv/bin/python -m pip --version"
        " && /opt/venv/bin/python -c 'import sys; print(sys.prefix)'"
    )
    box = run_container(standin_images["python"], command=["sh", "-c", script])
    assert box.wait(timeout=120)["StatusCode"] == 0, _logs(box)
    lines = _logs(box).splitlines()
    assert lines[0].startswith("Python 3.11.")
    assert lines[1].startswith("pip ")
    assert lines[-1] == "/opt/venv"


def test_python_standin_serves_as_base_image_of_a_multistage_build(
    docker_client: Any, standin_images: dict[str, str], run_container: Callable[..., Any]
) -> None:
    # The pattern of the generated Dockerfile: BASE_IMAGE build argument, a venv made in a
    # builder stage and copied into the runtime stage.
    dockerfile = (
        b"ARG BASE_IMAGE=python:3.11-slim\n"
        b"FROM ${BASE_IMAGE} AS builder\n"
        # The legacy builder keeps the builder stage as an untagged image: the label
        # lets the clean-up find it.
        b"LABEL org.servegen.test=ci-standins\n"
        b"RUN python -m venv /opt/venv\n"
        b"FROM ${BASE_IMAGE}\n"
        b"COPY --from=builder /opt/venv /opt/venv\n"
        b'ENV PATH="/opt/venv/bin:$PATH"\n'
        b'CMD ["python", "-c", "import sys; print(sys.prefix, sys.version_info[:2])"]\n'
    )
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    tag = f"servegen-test/standin-base:{uuid.uuid4().hex[:12]}"
    try:
        docker_client.images.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            buildargs={"BASE_IMAGE": standin_images["python"]},
            labels={LABEL: LABEL_VALUE},
            rm=True,
            forcerm=True,
        )
        box = run_container(tag)
        assert box.wait(timeout=60)["StatusCode"] == 0, _logs(box)
        assert _logs(box).strip() == "/opt/venv (3, 11)"
    finally:
        box_ids = [c.id for c in docker_client.containers.list(all=True, filters={"ancestor": tag})]
        for cid in box_ids:
            docker_client.containers.get(cid).remove(force=True)
        leftovers = [tag] + [
            image.id
            for image in docker_client.images.list(
                all=True, filters={"label": f"{LABEL}={LABEL_VALUE}"}
            )
        ]
        for ref in leftovers:
            try:
                docker_client.images.remove(ref, force=True)
            except Exception as exc:
                if "No such image" not in str(exc):
                    raise


def test_mysql_standin_allows_empty_root_password_and_runs_initdb_scripts(
    standin_images: dict[str, str], run_container: Callable[..., Any], tmp_path: Path
) -> None:
    initdb = tmp_path / "initdb"
    initdb.mkdir()
    (initdb / "01-schema.sql").write_text(
        "CREATE TABLE seeded (name VARCHAR(20));\nINSERT INTO seeded VALUES ('from-initdb');\n"
    )
    db = run_container(
        standin_images["mysql"],
        environment={"MYSQL_ALLOW_EMPTY_PASSWORD": "yes", "MYSQL_DATABASE": "seeded_db"},
        volumes={str(initdb): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"}},
        ports=MYSQL_PORTS,
        healthcheck=HEALTHCHECK,
    )
    _wait_healthy(db)
    conn = _connect(db, "root", "", "seeded_db")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM seeded")
            assert cur.fetchall() == (("from-initdb",),)
    finally:
        conn.close()


HAPROXY_CFG = """\
global
    log stdout format raw local0 info
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend hello
    bind :8080
    http-request return status 200 content-type text/plain string "hello from haproxy"
"""


def test_haproxy_standin_has_the_official_images_interface(
    docker_client: Any, standin_images: dict[str, str]
) -> None:
    image = docker_client.images.get(standin_images["haproxy"])
    config = image.attrs["Config"]
    assert config["User"] == "haproxy"
    assert config["Entrypoint"] == ["docker-entrypoint.sh"]
    assert config["Cmd"] == ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
    assert config["StopSignal"] == "SIGUSR1"
    assert config["WorkingDir"] == "/var/lib/haproxy"


def test_haproxy_standin_checks_and_serves_the_mounted_config(
    standin_images: dict[str, str], run_container: Callable[..., Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG, encoding="utf-8")
    cfg.chmod(0o644)
    mount = {str(cfg): {"bind": "/usr/local/etc/haproxy/haproxy.cfg", "mode": "ro"}}
    hardening: dict[str, Any] = {
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
    }
    # Options alone go to haproxy, as with the official entrypoint: `-c` checks the file.
    check = run_container(
        standin_images["haproxy"],
        command=["-c", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
        volumes=mount,
        **hardening,
    )
    assert check.wait(timeout=60)["StatusCode"] == 0, _logs(check)
    assert "Configuration file is valid" in _logs(check)
    whoami = run_container(standin_images["haproxy"], command=["id", "-u"])
    assert whoami.wait(timeout=60)["StatusCode"] == 0
    assert _logs(whoami).strip() == "99"

    proxy = run_container(
        standin_images["haproxy"],
        volumes=mount,
        ports={"8080/tcp": ("127.0.0.1", None)},
        **hardening,
    )
    deadline = time.monotonic() + 30
    body = b""
    while time.monotonic() < deadline and not body:
        proxy.reload()
        assert proxy.status != "exited", _logs(proxy)
        bindings = proxy.attrs["NetworkSettings"]["Ports"].get("8080/tcp") or []
        if bindings:
            port = int(bindings[0]["HostPort"])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    body = answer.read()
            except OSError:
                time.sleep(0.3)
    assert body == b"hello from haproxy", _logs(proxy)
    # SIGUSR1 (the image's stop signal) ends it cleanly, well within the stop timeout.
    proxy.stop(timeout=20)
    proxy.reload()
    assert proxy.attrs["State"]["ExitCode"] == 0, _logs(proxy)


def test_setup_engine_is_quick_and_idempotent_when_done(
    standin_images: dict[str, str], docker_client: Any
) -> None:
    # The images exist (the fixture checked), so a second run only checks and says so.
    script = Path(__file__).resolve().parents[2] / "ci" / "setup-engine.sh"
    before = {name: docker_client.images.get(name).id for name in standin_images.values()}
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (*standin_images.values(), "servegen-ci/debian:bookworm"):
        assert f"image: {name} up to date" in result.stdout
    assert "compose: docker compose 2." in result.stdout
    assert elapsed < 30, f"warm run took {elapsed:.1f}s"
    after = {name: docker_client.images.get(name).id for name in standin_images.values()}
    assert after == before


def test_setup_engine_rejects_an_unknown_argument() -> None:
    script = Path(__file__).resolve().parents[2] / "ci" / "setup-engine.sh"
    result = subprocess.run(
        ["bash", str(script), "--frobnicate"], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "[setup-engine] ERROR: unknown argument: --frobnicate (see --help)"
    )
