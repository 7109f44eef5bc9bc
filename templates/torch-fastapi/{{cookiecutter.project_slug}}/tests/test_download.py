"""scripts/download_model.py against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from conftest import SCRIPTS

PAYLOAD = os.urandom(300_000)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[Counter[str]] = Counter()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.hits[path] += 1
        n = self.hits[path]
        if path == "/model.pt" or (path == "/flaky" and n > 2) or (path == "/cut-once" and n > 1):
            self._send(PAYLOAD)
        elif path in ("/flaky", "/down"):
            self.send_error(503 if path == "/down" else 500)
        elif path == "/model.pt.sha256":
            self._send(f"{DIGEST}  model.pt\n".encode())
        elif path == "/wrong.sha256":
            self._send(b"not a checksum\n")
        elif path == "/forbidden":
            self.send_error(403)
        elif path in ("/cut-once", "/cut-always"):
            # Promise the whole file, send a third, hang up: an interrupted transfer.
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
        elif path == "/slow":
            time.sleep(3)
            self._send(PAYLOAD)
        else:
            self.send_error(404)

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[tuple[str, Counter[str]]]:
    _Handler.hits = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def download(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "download_model.py"), "--backoff", "0.05", *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_success(server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    url, hits = server
    out = tmp_path / "model.pt"
    result = download("--url", f"{url}/model.pt", "--sha256", DIGEST, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == PAYLOAD
    assert "progress 293.0 KiB of 293.0 KiB (100%)" in result.stdout
    assert f"sha256 {DIGEST}" in result.stdout
    assert leftovers(tmp_path) == []
    assert hits["/model.pt"] == 1


def test_the_sha256_can_come_from_a_checksum_file(
    server: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    url, hits = server
    out = tmp_path / "model.pt"
    env = {"MODEL_URL": f"{url}/model.pt", "MODEL_SHA256_URL": f"{url}/model.pt.sha256"}
    result = download("--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == PAYLOAD
    assert f"expected sha256 {DIGEST}" in result.stdout
    # A checksum file that holds no checksum is refused, and nothing is downloaded.
    wrong = {**env, "MODEL_SHA256_URL": f"{url}/wrong.sha256"}
    bad = download("--out", str(tmp_path / "m"), env=wrong)
    assert bad.returncode == 2
    assert "holds no sha256" in bad.stderr
    assert hits["/model.pt"] == 1


def test_an_env_file_is_read_and_the_environment_wins(
    server: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    url, _ = server
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# as in .env.example\n"
        f"MODEL_URL={url}/model.pt\n"
        f'export MODEL_SHA256="{"0" * 64}"\n'
        "APP_PORT=8000\n",
        encoding="utf-8",
    )
    out = tmp_path / "model.pt"
    refused = download("--env-file", str(env_file), "--out", str(out))
    assert refused.returncode == 3, refused.stderr  # the file's (wrong) sha256 was used
    result = download("--env-file", str(env_file), "--out", str(out), env={"MODEL_SHA256": DIGEST})
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == PAYLOAD
    missing = download("--env-file", str(tmp_path / "nope"), "--out", str(out))
    assert missing.returncode == 2
    assert "cannot read --env-file" in missing.stderr


def test_environment_variables_are_read(server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    url, _ = server
    out = tmp_path / "model.pt"
    env = {"MODEL_URL": f"{url}/model.pt", "MODEL_SHA256": DIGEST.upper(), "MODEL_PATH": str(out)}
    result = download(env=env)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == PAYLOAD


def test_second_run_is_idempotent(server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    url, hits = server
    out = tmp_path / "model.pt"
    args = ("--url", f"{url}/model.pt", "--sha256", DIGEST, "--out", str(out))
    assert download(*args).returncode == 0
    mtime = out.stat().st_mtime_ns
    again = download(*args)
    assert again.returncode == 0
    assert "up to date" in again.stdout
    assert hits["/model.pt"] == 1
    assert out.stat().st_mtime_ns == mtime


def test_wrong_file_in_place_is_replaced(server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    url, hits = server
    out = tmp_path / "model.pt"
    out.write_bytes(b"stale")
    result = download("--url", f"{url}/model.pt", "--sha256", DIGEST, "--out", str(out))
    assert result.returncode == 0
    assert out.read_bytes() == PAYLOAD
    assert hits["/model.pt"] == 1


def test_checksum_mismatch_leaves_nothing(server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    url, _ = server
    out = tmp_path / "model.pt"
    result = download("--url", f"{url}/model.pt", "--sha256", "0" * 64, "--out", str(out))
    assert result.returncode == 3
    assert "checksum mismatch" in result.stderr
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_not_found_is_not_retried(server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    url, hits = server
    result = download("--url", f"{url}/nope", "--sha256", DIGEST, "--out", str(tmp_path / "m.pt"))
    assert result.returncode == 4
    assert result.stderr.strip() == "error: not found: HTTP 404"
    assert hits["/nope"] == 1


def test_forbidden_is_not_retried(server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    url, hits = server
    result = download(
        "--url", f"{url}/forbidden", "--sha256", DIGEST, "--out", str(tmp_path / "m.pt")
    )
    assert result.returncode == 6
    assert hits["/forbidden"] == 1


def test_server_error_then_success_is_retried(
    server: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    url, hits = server
    out = tmp_path / "model.pt"
    result = download("--url", f"{url}/flaky", "--sha256", DIGEST, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert hits["/flaky"] == 3
    assert result.stdout.count("retrying in") == 2
    assert out.read_bytes() == PAYLOAD


def test_server_errors_exhaust_retries(server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    url, hits = server
    out = tmp_path / "model.pt"
    result = download(
        "--url", f"{url}/down", "--sha256", DIGEST, "--out", str(out), "--retries", "2"
    )
    assert result.returncode == 5
    assert "network failure after 3 attempts: HTTP 503" in result.stderr
    assert hits["/down"] == 3
    assert not out.exists()


def test_interrupted_transfer_is_retried(server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    url, hits = server
    out = tmp_path / "model.pt"
    result = download("--url", f"{url}/cut-once", "--sha256", DIGEST, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "interrupted" in result.stdout
    assert hits["/cut-once"] == 2
    assert out.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == []


def test_interrupted_every_time_leaves_nothing(
    server: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    url, _ = server
    out = tmp_path / "model.pt"
    result = download(
        "--url", f"{url}/cut-always", "--sha256", DIGEST, "--out", str(out), "--retries", "1"
    )
    assert result.returncode == 5
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_timeout_counts_as_network_failure(
    server: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    url, _ = server
    result = download(
        "--url",
        f"{url}/slow",
        "--sha256",
        DIGEST,
        "--out",
        str(tmp_path / "m.pt"),
        "--timeout",
        "0.5",
        "--retries",
        "0",
    )
    assert result.returncode == 5
    assert "network failure" in result.stderr


def test_connection_refused_is_a_network_failure(tmp_path: Path) -> None:
    result = download(
        "--url",
        "http://127.0.0.1:9/model.pt",
        "--sha256",
        DIGEST,
        "--out",
        str(tmp_path / "m.pt"),
        "--retries",
        "1",
    )
    assert result.returncode == 5


def test_file_urls(tmp_path: Path) -> None:
    source = tmp_path / "src.pt"
    source.write_bytes(PAYLOAD)
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    ok = download("--url", source.as_uri(), "--sha256", DIGEST, "--out", str(target_dir / "m.pt"))
    assert ok.returncode == 0, ok.stderr
    assert (target_dir / "m.pt").read_bytes() == PAYLOAD
    missing = download(
        "--url",
        (tmp_path / "nope.pt").as_uri(),
        "--sha256",
        DIGEST,
        "--out",
        str(target_dir / "n.pt"),
    )
    assert missing.returncode == 4


def test_skipping_verification_is_explicit_and_loud(
    server: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    url, _ = server
    out = tmp_path / "model.pt"
    refused = download("--url", f"{url}/model.pt", "--out", str(out))
    assert refused.returncode == 2
    assert "no sha256" in refused.stderr
    assert not out.exists()
    result = download("--url", f"{url}/model.pt", "--out", str(out), "--insecure-skip-verify")
    assert result.returncode == 0
    assert "WARNING: sha256 verification is OFF" in result.stdout
    assert out.read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no URL"),
        (("--url", "ftp://host/m.pt", "--sha256", DIGEST), "unsupported URL scheme 'ftp'"),
        (("--url", "http://127.0.0.1/m.pt", "--sha256", "xyz"), "64 hexadecimal"),
    ],
)
def test_bad_arguments(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = download(*args, "--out", str(tmp_path / "m.pt"))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_target_folder_is_an_io_error(
    server: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    url, _ = server
    result = download(
        "--url", f"{url}/model.pt", "--sha256", DIGEST, "--out", str(tmp_path / "no" / "m.pt")
    )
    assert result.returncode == 7
    assert "does not exist" in result.stderr


def test_credentials_in_the_url_are_not_logged(
    server: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    url, _ = server
    signed = url.replace("http://", "http://user:hunter2@") + "/model.pt?signature=abc123"
    result = download("--url", signed, "--sha256", DIGEST, "--out", str(tmp_path / "m.pt"))
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert "abc123" not in result.stdout + result.stderr
