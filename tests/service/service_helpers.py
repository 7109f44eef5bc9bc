"""Helpers of the service tests: render, a cached venv per requirements, processes."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = REPO_ROOT / "templates" / "torch-fastapi"

#: Virtual environments of generated projects, one per distinct set of requirement
#: files; git-ignored (".venv/"), reused across runs because torch takes a minute.
VENV_CACHE = Path(os.environ.get("SERVEGEN_SERVICE_VENV_CACHE", Path(__file__).parent / ".venv"))

DEFAULT: dict[str, Any] = {}
#: Batching off, another port, free text full of characters that need escaping.
VARIANT: dict[str, Any] = {
    "project_name": "Fraud \"Scorer\" #2: naïve & 'quoted'",
    "project_slug": "fraud-scorer",
    "description": 'Scores "risky" payments: 100% in-house\nsecond line \\ with a backslash',
    "author": "Risk Team <risk@example.org>",
    "api_port": "9123",
    "db_name": "fraud_log",
    "batching": False,
    "batch_max_size": "16",
    "model_format": "torchscript",
}
IMAGE = "image-classification"

#: name -> answers: every CPU task x format (the default and the variant among them),
#: and the CUDA flavour, whose tests must pass without a GPU.
PROJECTS: dict[str, dict[str, Any]] = {
    "default": DEFAULT,
    "variant": VARIANT,
    "tensor-export": {"project_name": "Tensor Export", "model_format": "export"},
    "image-state_dict": {"project_name": "Image Weights", "task": IMAGE},
    "image-torchscript": {
        "project_name": "Image Script",
        "task": IMAGE,
        "model_format": "torchscript",
        "batching": False,
    },
    "image-export": {"project_name": "Image Export", "task": IMAGE, "model_format": "export"},
    "cuda": {"project_name": "Vision Service", "accelerator": "cuda", "task": IMAGE},
}


def mysql_parts(url: str) -> dict[str, str]:
    """Host, port, user, password and database of a ``mysql+pymysql://`` URL."""
    parts = urllib.parse.urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 3306),
        "user": urllib.parse.unquote(parts.username or ""),
        "password": urllib.parse.unquote(parts.password or ""),
        "database": parts.path.lstrip("/"),
    }


def render(answers: dict[str, Any], output_dir: Path) -> Path:
    """Render the template with plain cookiecutter; return the project folder."""
    path = cookiecutter(
        str(TEMPLATE_DIR), no_input=True, extra_context=answers, output_dir=str(output_dir)
    )
    return Path(path)


def _python_for(project: Path) -> str:
    """The interpreter matching the project's python_version (3.11 here)."""
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    wanted = text.split('requires-python = ">=', 1)[1].split('"', 1)[0]
    if f"{sys.version_info.major}.{sys.version_info.minor}" == wanted:
        return sys.executable
    found = shutil.which(f"python{wanted}")
    if found is None:
        raise RuntimeError(f"no python{wanted} on PATH for the generated project")
    return found


def venv_for(project: Path) -> Path:
    """A venv with the project's pinned requirements, built once per requirement set.

    The key is a hash of both requirement files; the venv is built in a temporary
    folder and renamed into place, under a lock, so a crash or a second pytest process
    never sees a half-built one.
    """
    digest = hashlib.sha256()
    for name in ("requirements.txt", "requirements-dev.txt"):
        digest.update((project / name).read_bytes())
    python = _python_for(project)
    digest.update(python.encode())
    target = VENV_CACHE / digest.hexdigest()[:16]
    marker = target / ".complete"
    if marker.exists():
        return target
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    with (VENV_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return target
        building = VENV_CACHE / f"{target.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(building)], check=True)
        # Renaming a venv breaks the shebangs of its entry-point scripts, so the tests
        # only ever run `<venv>/bin/python -m <tool>`.
        install = subprocess.run(
            [
                str(building / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(project / "requirements-dev.txt"),
            ],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise RuntimeError(
                f"pip install of the pinned requirements failed:\n{install.stderr[-3000:]}"
            )
        building.rename(target)
        marker.write_text("ok\n")
        _prune(keep=target)
    return target


def _prune(keep: Path, most: int = 5) -> None:
    """Keep the cache small: each venv holds torch (about 1 GB)."""
    entries = [p for p in VENV_CACHE.iterdir() if p.is_dir() and (p / ".complete").exists()]
    entries.sort(key=lambda p: (p / ".complete").stat().st_mtime, reverse=True)
    for old in entries[most:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(
    method: str, url: str, body: bytes | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; returns status, headers and body (also for 4xx/5xx)."""
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_http(url: str, proc: subprocess.Popen[str], within: float = 90) -> None:
    """Wait until ``url`` answers 200 or the process exits."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            if http("GET", url, timeout=2)[0] == 200:
                return
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered 200 within {within} s")


@contextlib.contextmanager
def running(
    cmd: list[str], cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[str]]:
    """A background process, logging to ``log``; terminated (then killed) on exit."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
