"""The real process: ``python -m <package>`` serves, health-checks and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import PACKAGE, PROJECT_DIR


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "MODEL_", "PORT"))}
    env.update(PYTHONPATH=str(PROJECT_DIR / "src"), PORT=str(port), HOST="127.0.0.1", **extra)
    return env


def _healthcheck(port: int, *args: str) -> int:
    return subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.healthcheck", *args],
        env=_env(port),
        capture_output=True,
        timeout=30,
    ).returncode


def test_serves_health_checks_and_stops_on_sigterm(
    demo_model: tuple[Path, str], tmp_path: Path
) -> None:
    port = _free_port()
    assert _healthcheck(port) == 1  # nothing listens yet
    env = _env(
        port,
        MODEL_PATH=str(demo_model[0]),
        MODEL_SHA256=demo_model[1],
        DB_ENABLED="false",
        DEVICE="cpu",
        TORCH_THREADS="1",
        ACCESS_LOG="all",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.2)
        assert _healthcheck(port) == 0
        body = (PROJECT_DIR / "examples" / "predict_request.json").read_bytes()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=body,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert len(json.load(r)["outputs"]) == len(json.loads(body)["inputs"])
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # uvicorn re-raises the signal after its graceful shutdown (exit status 143 in a
    # container); what matters is that the lifespan shutdown ran ("stopped" below).
    assert proc.returncode in (0, -signal.SIGTERM)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [line["msg"] for line in lines]
    assert "ready" in messages
    assert "stopped" in messages
    ready = next(line for line in lines if line["msg"] == "ready")
    if sys.platform != "win32":  # requirements.txt installs uvloop everywhere else
        assert ready["event_loop"] == "uvloop"
    predict_lines = [line for line in lines if line.get("path") == "/predict"]
    assert predict_lines and predict_lines[0]["request_id"]


class _Health(BaseHTTPRequestHandler):
    status = 200
    ready_status = 200

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        codes = {"/health": self.status, "/ready": self.ready_status}
        self.send_response(codes.get(self.path, 404))
        self.end_headers()


def test_healthcheck_follows_the_health_status() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        _Health.status = 200
        assert _healthcheck(port) == 0
        _Health.status = 503  # the state a failed model load reports
        assert _healthcheck(port) == 1
        # --ready follows /ready: alive but still loading is not healthy for compose.
        _Health.status, _Health.ready_status = 200, 503
        assert _healthcheck(port) == 0
        assert _healthcheck(port, "--ready") == 1
        _Health.ready_status = 200
        assert _healthcheck(port, "--ready") == 0
        assert _healthcheck(port, "--bogus") == 2
    finally:
        server.shutdown()
        server.server_close()
