{%- set pkg = cookiecutter.package_name -%}
{%- set image = cookiecutter.task == "image-classification" -%}
"""docs/your-model.md, run as written: train, save, serve with the real server, predict."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import PACKAGE, PROJECT_DIR

DOC = PROJECT_DIR / "docs" / "your-model.md"


def _blocks() -> dict[str, str]:
    """The doc's fenced blocks marked ``<!-- test: NAME -->``, by name."""
    text = DOC.read_text(encoding="utf-8")
    found = re.findall(r"<!-- test: (\S+) -->\n```\w*\n(.*?)```", text, re.S)
    return dict(found)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_the_walkthrough_trains_saves_and_serves_a_model(tmp_path: Path) -> None:
    blocks = _blocks()
    assert set(blocks) == {"train.py", "request.json"}
    (tmp_path / "train.py").write_text(blocks["train.py"], encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "MODEL_", "PORT"))}
    env["PYTHONPATH"] = str(PROJECT_DIR / "src")
    trained = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert trained.returncode == 0, trained.stderr
    sha256 = trained.stdout.split()[-1]
    (model,) = (tmp_path / "models").iterdir()

    # What `make run MODEL=...` does, with the sha256 the script printed.
    port = _free_port()
    env.update(
        DEV_MODE="true",
        DB_ENABLED="false",
        MODEL_PATH=str(model),
        MODEL_SHA256=sha256,
        HOST="127.0.0.1",
        PORT=str(port),
        TORCH_THREADS="1",
        # The tests are about the service's logic; they run on any machine.
        DEVICE="cpu",
    )
    log = tmp_path / "service.log"
    with log.open("w") as out:
        command = [sys.executable, "-m", PACKAGE]
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _call(base + "/ready")
            except OSError:
                status, body = 0, {}
            if status == 200:
                break
            assert body.get("state") != "failed", body
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.2)
        status, described = _call(base + "/model")
        assert described["sha256"] == sha256
        status, answer = _call(base + "/predict", blocks["request.json"].encode())
        assert status == 200, answer
{%- if image %}
        assert described["name"] == "bright-or-dark"
        assert described["labels"] == ["dark", "bright"]
        (output,) = answer["outputs"]
        assert output["labels"][0]["label"] == "bright", output
{%- else %}
        assert described["name"] == "scorer"
        assert described["input_shape"] == [6]
        (row,) = answer["outputs"]
        assert len(row) == 2
        status, refused = _call(base + "/predict", b'{"inputs": [[1, 2, 3, 4]]}')
        assert (status, refused["detail"]) == (422, "inputs.0: must have shape [6], got [4]")
        status, schema = _call(base + "/openapi.json")
        item = schema["components"]["schemas"]["Input"]
        assert (item["minItems"], item["maxItems"]) == (6, 6)
{%- endif %}
    finally:
        server.terminate()
        server.wait(timeout=30)
