"""``servegen test`` for real: build, run, probe and tear down a rendered project.

Each test renders the default project with plain cookiecutter, runs the harness with the
local stand-in images and the shared wheelhouse, and checks what a user would see: the
exit code, the JSON report, and that nothing labelled with the run is left on the engine.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness_helpers import REPO_ROOT, leftovers, render_default, run_harness, servegen_argv

from generator.harness.context import HarnessOptions

pytestmark = [pytest.mark.docker, pytest.mark.slow]

_RUN_LINE = re.compile(r"servegen test: run (sgtest-[0-9a-f]+), .*image (\S+)")


def _options(project: Path, images: dict[str, str], wheels: Path, **extra: Any) -> HarnessOptions:
    return HarnessOptions(
        project_dir=project,
        base_image=images["python"],
        db_image=images["mysql"],
        proxy_image=images["haproxy"],
        wheelhouse=str(wheels),
        ready_timeout=180.0,
        **extra,
    )


def _steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in report["steps"]}


def test_default_project_passes_every_step_and_leaves_nothing(
    project_dir: Path,
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
    tmp_path: Path,
) -> None:
    json_path = tmp_path / "report.json"
    code = run_harness(_options(project_dir, standin_images, wheelhouse, json_path=json_path))
    report = json.loads(json_path.read_text(encoding="utf-8"))
    steps = _steps(report)
    failed = {name: s.get("message") for name, s in steps.items() if s["status"] != "passed"}
    assert code == 0, failed
    assert report["passed"] is True
    assert list(steps) == [
        "project",
        "preflight",
        "lint",
        "wheelhouse",
        "build",
        "demo-model",
        "up",
        "ready",
        "predict",
        "malformed",
        "database",
        "teardown",
    ]
    assert not failed
    build = steps["build"]["figures"]
    assert build["build_seconds"] > 0
    assert build["image_size_bytes"] > 100_000_000  # torch is in there
    assert 0 < build["added_bytes"] < build["image_size_bytes"]
    assert build["layers"] > build["added_layers"] > 0
    assert build["base_image"] == standin_images["python"]
    assert build["image_id"].startswith("sha256:")
    assert any("load build definition" in line for line in steps["build"]["log"])
    assert steps["ready"]["figures"]["startup_seconds"] > 0
    assert steps["predict"]["figures"]["status"] == 200
    assert steps["predict"]["figures"]["checked"] == "shape [3]"
    assert steps["predict"]["figures"]["model"] == "demo-mlp-small"
    assert steps["malformed"]["figures"] == {"broken_json": 422, "wrong_type": 422}
    assert steps["database"]["figures"]["rows"] == 1
    assert steps["teardown"]["figures"]["remaining"] == {}
    assert leftovers(docker_client, report["run_id"]) == {}
    assert not docker_client.images.list(name=build["image"])
    # The project itself is unchanged apart from the wheelhouse it was asked to use.
    assert not (project_dir / "smoke-overlay.yaml").exists()


def test_drills_break_the_stack_and_it_copes(
    project_dir: Path,
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
    tmp_path: Path,
) -> None:
    """``--drills``: the database killed under load, the app crashed, a corrupt model."""
    json_path = tmp_path / "report.json"
    out = io.StringIO()
    options = _options(project_dir, standin_images, wheelhouse, json_path=json_path, drills=True)
    code = run_harness(options, out=out)
    report = json.loads(json_path.read_text(encoding="utf-8"))
    steps = _steps(report)
    failed = {name: s.get("message") for name, s in steps.items() if s["status"] != "passed"}
    assert code == 0, (failed, out.getvalue())
    assert list(steps)[-4:] == ["db-outage", "app-crash", "bad-checksum", "teardown"]
    # The report table shows each drill's figures.
    table = out.getvalue()
    assert re.search(r"^db-outage\s+passed\s+[\d.]+\s+requests=\d+, failed=0,", table, re.M)
    url = steps["up"]["figures"]["url"]

    outage = steps["db-outage"]["figures"]
    assert outage["requests"] > 50 and outage["failed"] == 0  # every /predict answered 200
    assert outage["clients"] >= 2
    assert outage["outage_seconds"] >= 5  # the database stayed down under load
    assert outage["log_resumed_seconds"] > 0
    # The outage was counted in /metrics, and the service says the database is back.
    assert outage["db_up_during"] == 0 or outage["db_write_failures"] > 0
    assert outage["db_up_after"] == 1
    assert outage["db_queue_dropped"] == 0
    assert outage["db_rows_written"] >= outage["requests"] - outage["post_outage_requests"]
    # Every request made after the database came back has its row in MySQL.
    assert outage["post_outage_rows"] == outage["post_outage_requests"] > 0

    crash = steps["app-crash"]["figures"]
    assert crash["restart_policy"] == "unless-stopped"
    assert crash["restarts"] >= 1
    assert 0 <= crash["restarted_seconds"] <= crash["ready_seconds"] < 180
    assert url == f"http://127.0.0.1:{crash['port']}"  # back on the same address
    assert crash["predict_status"] == 200

    refused = steps["bad-checksum"]["figures"]
    assert refused["downloader_exit"] == 3  # the downloader's checksum-mismatch code
    assert refused["models_dir"] == "model.safetensors"  # nothing left by the refused one
    assert refused["app_state"] == "failed"
    assert refused["predict_status"] == 503

    assert steps["teardown"]["figures"]["remaining"] == {}
    assert leftovers(docker_client, report["run_id"]) == {}


def test_a_failed_drill_fails_the_run_with_the_containers_log(
    project_dir: Path,
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
    tmp_path: Path,
) -> None:
    """An app without a restart policy stays down after a crash: exit 5, its log, no leftovers."""
    compose = project_dir / "compose.yaml"
    text = compose.read_text(encoding="utf-8")
    # The app's own policy only: the database and the proxy keep theirs.
    head, app_and_rest = text.split("\n  app:\n")
    app, rest = app_and_rest.split("\n  proxy:\n")
    assert app.count("restart: unless-stopped") == 1, "compose.yaml changed shape"
    app = app.replace("restart: unless-stopped", 'restart: "no"')
    compose.write_text(f"{head}\n  app:\n{app}\n  proxy:\n{rest}", encoding="utf-8")
    json_path = tmp_path / "report.json"
    options = _options(project_dir, standin_images, wheelhouse, json_path=json_path, drills=True)
    code = run_harness(options)
    report = json.loads(json_path.read_text(encoding="utf-8"))
    steps = _steps(report)
    assert code == 5
    assert report["outcome"] == "smoke failed"
    assert steps["db-outage"]["status"] == "passed"  # the harness starts the database itself
    crash = steps["app-crash"]
    assert crash["status"] == "failed"
    assert crash["message"] == "the app container has no restart policy: it stayed down"
    assert crash["log_source"] == "container app"
    assert any("Uvicorn running" in line for line in crash["log_tail"]), crash["log_tail"]
    assert "bad-checksum" not in steps
    assert steps["teardown"]["status"] == "passed"
    assert leftovers(docker_client, report["run_id"]) == {}


def _corrupt_the_served_model(project: Path) -> None:
    """Make every run of the project's demo-model maker append different bytes to its file.

    The harness learns the checksum from one run (the demo-model step) and the overlay's
    model-server serves the file of another, so the downloader meets a model that does
    not match its checksum, as with a corrupted download.
    """
    script = project / "scripts" / "make_demo_model.py"
    text = script.read_text(encoding="utf-8")
    guard = 'if __name__ == "__main__":\n'
    assert text.count(guard) == 1, "make_demo_model.py changed shape: adapt this fixture"
    noise = (
        "    import atexit, os, sys  # test fixture: corrupt the written model at exit\n"
        "    out = sys.argv[sys.argv.index('--out') + 1]\n"
        "    atexit.register(lambda: open(out, 'ab').write(os.urandom(16)))\n"
    )
    script.write_text(text.replace(guard, guard + noise), encoding="utf-8")


#: Every CPU task x format but the default (state_dict tensors, the test above).
VARIANTS = [
    pytest.param({"model_format": "torchscript"}, "shape [3]", id="tensor-torchscript"),
    pytest.param({"model_format": "export"}, "shape [3]", id="tensor-export"),
    pytest.param({"task": "image-classification"}, "top 5 of 10 labels", id="image-state_dict"),
    pytest.param(
        {"task": "image-classification", "model_format": "torchscript", "batching": "no"},
        "top 5 of 10 labels",
        id="image-torchscript",
    ),
    pytest.param(
        {"task": "image-classification", "model_format": "export"},
        "top 5 of 10 labels",
        id="image-export",
    ),
]


@pytest.mark.parametrize(("answers", "checked"), VARIANTS)
def test_every_task_and_format_is_built_and_smoke_run(
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
    tmp_path: Path,
    answers: dict[str, str],
    checked: str,
) -> None:
    project = render_default(tmp_path / "render", **answers)
    json_path = tmp_path / "report.json"
    code = run_harness(_options(project, standin_images, wheelhouse, json_path=json_path))
    report = json.loads(json_path.read_text(encoding="utf-8"))
    steps = _steps(report)
    failed = {name: s.get("message") for name, s in steps.items() if s["status"] != "passed"}
    assert code == 0, (failed, steps.get("build", {}).get("log", [])[-20:])
    predict = steps["predict"]["figures"]
    # The sample request's outputs fit what GET /model says the model returns.
    assert predict["checked"] == checked
    if answers.get("task") == "image-classification":
        assert predict["upload_status"] == 200  # curl -F image=@examples/image.jpg
    assert steps["database"]["figures"]["rows"] == 1
    assert leftovers(docker_client, report["run_id"]) == {}


def test_corrupt_model_checksum_fails_the_smoke_test_and_leaves_nothing(
    project_dir: Path,
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
    tmp_path: Path,
) -> None:
    # A fresh clone has no secrets/*.txt: the overlay must supply throw-away ones.
    for secret in (project_dir / "secrets").glob("*.txt"):
        secret.unlink()
    _corrupt_the_served_model(project_dir)
    json_path = tmp_path / "report.json"
    code = run_harness(_options(project_dir, standin_images, wheelhouse, json_path=json_path))
    report = json.loads(json_path.read_text(encoding="utf-8"))
    steps = _steps(report)
    assert code == 5
    assert report["outcome"] == "smoke failed"
    up = steps["up"]
    assert up["status"] == "failed"
    assert "model-downloader" in up["message"]
    assert up["message"].endswith("exit 3")  # the downloader's code for a checksum mismatch
    assert up["log_source"] == "container model-downloader"
    assert any("sha256" in line.lower() for line in up["log_tail"]), up["log_tail"]
    assert "ready" not in steps  # the app never served
    assert steps["teardown"]["status"] == "passed"
    assert leftovers(docker_client, report["run_id"]) == {}
    assert not list((project_dir / "secrets").glob("*.txt"))


def _interrupt_when(
    argv: list[str], trigger: Callable[[str], bool], signum: int, limit: float = 600
) -> tuple[int, str, str, str]:
    """Run the CLI, send ``signum`` when ``trigger`` matches an output line; see what it did."""
    lines: list[str] = []
    sent = threading.Event()
    with subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        timer = threading.Timer(limit, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if not sent.is_set() and trigger(line):
                    proc.send_signal(signum)
                    sent.set()
            code = proc.wait()
        finally:
            timer.cancel()
    output = "".join(lines)
    match = _RUN_LINE.search(output)
    assert match, output[-3000:]
    assert sent.is_set(), f"the trigger line never came:\n{output[-3000:]}"
    return code, output, match[1], match[2]


def _cli_args(project: Path, images: dict[str, str], wheels: Path) -> list[str]:
    return servegen_argv(
        "test",
        str(project),
        "--base-image",
        images["python"],
        "--db-image",
        images["mysql"],
        "--proxy-image",
        images["haproxy"],
        "--wheelhouse",
        str(wheels),
    )


def _assert_nothing_left(client: Any, run_id: str, image: str, output: str) -> None:
    assert leftovers(client, run_id) == {}, output[-3000:]
    assert not client.images.list(name=image), output[-3000:]
    # No compose child of the run keeps running after the harness has exited.
    deadline = time.monotonic() + 5
    while True:
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
        if run_id not in ps.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert run_id not in ps.stdout, ps.stdout


def _after_up(line: str) -> bool:
    return re.search(r"app-1\s+Started", line) is not None


def _db_killed(line: str) -> bool:
    return "db killed" in line


@pytest.mark.parametrize(
    ("signum", "moment", "extra"),
    [
        pytest.param(
            signal.SIGINT, lambda line: "load build definition" in line, (), id="int-build"
        ),
        pytest.param(signal.SIGINT, _after_up, (), id="int-after-up"),
        pytest.param(signal.SIGTERM, _after_up, (), id="term-after-up"),
        # The database is down and the load is running: both must end, the stack must go.
        pytest.param(signal.SIGINT, _db_killed, ("--drills",), id="int-db-outage-drill"),
    ],
)
def test_a_signal_tears_everything_down(
    signum: int,
    moment: Callable[[str], bool],
    extra: tuple[str, ...],
    project_dir: Path,
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
) -> None:
    code, output, run_id, image = _interrupt_when(
        [*_cli_args(project_dir, standin_images, wheelhouse), *extra], moment, signum
    )
    assert code == 128 + signum, output[-3000:]
    assert "INTERRUPTED" in output
    assert "teardown" in output
    _assert_nothing_left(docker_client, run_id, image, output)


def test_auto_wheelhouse_resolves_from_the_projects_wheels_and_builds_offline(
    project_dir: Path,
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
    tmp_path: Path,
) -> None:
    """``--wheelhouse auto``: the image's Python is probed, present wheels are reused."""
    for wheel in wheelhouse.glob("*.whl"):
        os.link(wheel, project_dir / "wheels" / wheel.name)
    json_path = tmp_path / "report.json"
    options = _options(project_dir, standin_images, wheelhouse, json_path=json_path)
    code = run_harness(dataclasses.replace(options, wheelhouse="auto"))
    report = json.loads(json_path.read_text(encoding="utf-8"))
    steps = _steps(report)
    assert code == 0, {n: s.get("message") for n, s in steps.items()}
    assert steps["wheelhouse"]["figures"]["source"] == "auto (reused)"
    assert steps["wheelhouse"]["figures"]["python"] == "3.11"
    assert leftovers(docker_client, report["run_id"]) == {}


def test_keep_leaves_the_stack_running_and_prints_how_to_remove_it(
    project_dir: Path,
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
) -> None:
    out = io.StringIO()
    code = run_harness(_options(project_dir, standin_images, wheelhouse, keep=True), out=out)
    text = out.getvalue()
    url = re.search(r"The stack is still running: (http://127\.0\.0\.1:\d+)", text)
    remove = re.search(r"^  (.* down --volumes --remove-orphans && .*)$", text, re.MULTILINE)
    run_id = re.search(r"--project-name (sgtest-[0-9a-f]+)-", text)
    assert code == 0, text
    assert url and remove and run_id, text
    try:
        with urllib.request.urlopen(url[1] + "/ready", timeout=10) as response:
            assert response.status == 200
        assert leftovers(docker_client, run_id[1]).get("containers")
    finally:
        done = subprocess.run(remove[1], shell=True, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert leftovers(docker_client, run_id[1]) == {}


def test_a_wheelhouse_missing_packages_fails_the_build_with_exit_4(
    project_dir: Path,
    docker_client: Any,
    standin_images: dict[str, str],
    wheelhouse: Path,
    tmp_path: Path,
) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    for wheel in wheelhouse.glob("fastapi-*.whl"):
        os.link(wheel, partial / wheel.name)
    json_path = tmp_path / "report.json"
    code = run_harness(_options(project_dir, standin_images, partial, json_path=json_path))
    report = json.loads(json_path.read_text(encoding="utf-8"))
    steps = _steps(report)
    assert code == 4
    assert report["outcome"] == "build failed"
    assert steps["build"]["status"] == "failed"
    assert steps["build"]["log_source"] == "the build"
    assert "No matching distribution" in steps["build"]["message"]
    assert any("No matching distribution" in line for line in steps["build"]["log_tail"])
    assert len(steps["build"]["log"]) >= len(steps["build"]["log_tail"])
    assert "up" not in steps
    assert steps["teardown"]["status"] == "passed"
    assert leftovers(docker_client, report["run_id"]) == {}
