"""The generated service: its own tests, its lint, and a real uvicorn process.

Each generated project gets a venv from its pinned requirements (cached, see
``service_helpers.venv_for``); everything then runs in that venv, as a user would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tomllib
from pathlib import Path

import pytest
from markdown_text import md_unescape
from project_files import expected_files
from service_helpers import (
    PROJECTS,
    VARIANT,
    free_port,
    http,
    mysql_parts,
    running,
    wait_http,
)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment minus anything the service reads, plus ``extra``."""
    prefixes = ("DB_", "MODEL_", "BATCH", "DEV_MODE", "PORT", "HOST", "TEST_MYSQL_URL", "PYTHON")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def _package(project: Path) -> str:
    """The project's package: the folder of src/ with an __init__.py (not ``*.egg-info``)."""
    (init,) = (project / "src").glob("*/__init__.py")
    return init.parent.name


@pytest.mark.parametrize("name", list(PROJECTS))
def test_file_set_and_escaped_free_text(projects: dict[str, Path], name: str) -> None:
    project = projects[name]
    package = _package(project)
    for rel in expected_files(package, PROJECTS[name].get("task", "tensor")):
        assert (project / rel).is_file(), rel
    for path in project.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml", ".json", ".md", ".txt"):
            text = path.read_text(encoding="utf-8")
            assert "{{" not in text and "{%" not in text, path
    answers = VARIANT if name == "variant" else {}
    about = json.loads((project / "src" / package / "about.json").read_text(encoding="utf-8"))
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    if answers:
        assert about == {"title": answers["project_name"], "description": answers["description"]}
        # Core metadata's summary is one line: pyproject gets the folded text.
        assert meta["description"] == " ".join(answers["description"].split())
        assert meta["authors"] == [{"name": answers["author"]}]
        title = (project / "README.md").read_text(encoding="utf-8").splitlines()[0]
        assert md_unescape(title.removeprefix("# ")) == answers["project_name"]
    assert "torch==2.13.0" in (project / "requirements.txt").read_text().splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PROJECTS))
def test_generated_project_is_lint_clean_and_typed(
    projects: dict[str, Path], project_venv: dict[str, Path], name: str
) -> None:
    project, python = projects[name], str(project_venv[name] / "bin" / "python")
    for cmd in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
        result = subprocess.run(
            [python, "-m", *cmd],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=600,
            env=_clean_env(MYPY_CACHE_DIR=str(project / ".mypy_cache")),
        )
        assert result.returncode == 0, f"{' '.join(cmd)}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.slow
@pytest.mark.mysql
@pytest.mark.parametrize("name", list(PROJECTS))
def test_generated_tests_pass(
    projects: dict[str, Path], project_venv: dict[str, Path], mysql_url: str | None, name: str
) -> None:
    project, python = projects[name], str(project_venv[name] / "bin" / "python")
    env = _clean_env(**({"TEST_MYSQL_URL": mysql_url} if mysql_url else {}))
    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    tail = result.stdout[-4000:]
    assert result.returncode == 0, tail + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    assert "failed" not in summary and "error" not in summary, summary
    if mysql_url:
        # With a server, nothing may skip: the database tests really ran.
        assert "skipped" not in summary, tail


@pytest.mark.slow
@pytest.mark.mysql
def test_service_under_uvicorn(
    projects: dict[str, Path], project_venv: dict[str, Path], mysql_url: str | None, tmp_path: Path
) -> None:
    project, python = projects["default"], str(project_venv["default"] / "bin" / "python")
    package = _package(project)
    model = tmp_path / "model.safetensors"
    made = subprocess.run(
        [python, "scripts/make_demo_model.py", "--out", str(model)],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(),
    )
    sha256 = made.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", sha256)
    port = free_port()
    env = _clean_env(
        PYTHONPATH=str(project / "src"),
        MODEL_PATH=str(model),
        MODEL_SHA256=sha256,
        TORCH_THREADS="1",
        DB_ENABLED="false",
    )
    if mysql_url:
        db = mysql_parts(mysql_url)
        env.update(
            DB_ENABLED="true",
            DB_HOST=db["host"],
            DB_PORT=db["port"],
            DB_USER=db["user"],
            DB_NAME=db["database"],
        )
        secret = tmp_path / "db_password"
        secret.write_text(f"{db['password']}\n")  # as compose secrets deliver it
        env["DB_PASSWORD_FILE"] = str(secret)
    app = f"{package}.main:app"
    cmd = [python, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with running(cmd, project, env, tmp_path / "service.log") as proc:
        wait_http(f"{base}/ready", proc)
        status, _, body = http("GET", f"{base}/health")
        assert (status, json.loads(body)["state"]) == (200, "ready")
        example = (project / "examples" / "predict_request.json").read_bytes()
        status, headers, body = http("POST", f"{base}/predict", example)
        assert status == 200, body
        answer = json.loads(body)
        assert len(answer["outputs"]) == len(json.loads(example)["inputs"])
        assert answer["request_id"] == headers["x-request-id"]
        assert answer["model_version"] == "1.0.0"
        status, bad_headers, body = http("POST", f"{base}/predict", b'{"inputs": [[1, 2]]}')
        assert status == 422
        assert json.loads(body)["detail"] == "inputs.0: must have shape [4], got [2]"
        status, _, body = http("GET", f"{base}/model")
        assert json.loads(body)["sha256"] == sha256
        status, _, body = http("GET", f"{base}/metrics")
        metrics = body.decode()
        assert status == 200
        assert 'http_requests_total{method="POST",route="/predict",status="200"} 1.0' in metrics
        assert "prediction_items_total 2.0" in metrics
        assert "model_ready 1.0" in metrics
        if mysql_url:
            _assert_logged(python, mysql_url, answer["request_id"], base)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    log_lines = (tmp_path / "service.log").read_text().splitlines()
    records = [json.loads(line) for line in log_lines if line.startswith("{")]
    assert any(r.get("msg") == "stopped" for r in records), log_lines[-10:]
    # ACCESS_LOG defaults to errors: the 422 has its access line, the answered
    # prediction has none (its row is in the prediction log instead).
    access = {(r.get("request_id"), r.get("status")) for r in records if r.get("msg") == "request"}
    assert (bad_headers["x-request-id"], 422) in access, log_lines[-10:]
    assert not any(rid == answer["request_id"] for rid, _ in access)


def _assert_logged(python: str, mysql_url: str, request_id: str, base: str) -> None:
    """The prediction's row is in MySQL (read with the project's own venv)."""
    script = (
        "import sys, time\n"
        "from sqlalchemy import create_engine, text\n"
        "engine = create_engine(sys.argv[1])\n"
        "for _ in range(100):\n"
        "    with engine.connect() as c:\n"
        "        row = c.execute(text('SELECT n_items, status FROM predictions"
        " WHERE request_id = :r'), {'r': sys.argv[2]}).first()\n"
        "    if row:\n"
        "        print(row.n_items, row.status); break\n"
        "    time.sleep(0.1)\n"
    )
    result = subprocess.run(
        [python, "-c", script, mysql_url, request_id], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "2 ok", result.stdout + result.stderr
    _, _, body = http("GET", f"{base}/ready")
    assert json.loads(body)["db"] == "up"


@pytest.mark.slow
def test_the_installed_project_starts(
    projects: dict[str, Path], project_venv: dict[str, Path], tmp_path: Path
) -> None:
    # `pip install .` puts the package (and the data it reads at start-up) in place of src/.
    # It builds from a copy: the build writes src/<package>.egg-info into the tree it
    # builds, and the rendered project is shared by the other tests.
    python = str(project_venv["default"] / "bin" / "python")
    project = shutil.copytree(projects["default"], tmp_path / "project")
    site = tmp_path / "site"
    pip = [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    installed = subprocess.run(
        [*pip, "--target", str(site), str(project)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(),
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    package = _package(project)
    assert (site / package / "about.json").is_file()
    started = subprocess.run(
        [python, "-c", f"from {package}.main import app; print(app.title)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(PYTHONPATH=str(site), DB_ENABLED="false"),
    )
    assert started.returncode == 0, started.stderr[-3000:]
    assert started.stdout.strip() == "Model Service"
