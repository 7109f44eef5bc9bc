"""Smoke run of the benchmark code at tiny sizes (figures are not asserted, shapes are).

The load generator runs for real, in its own process, against a small HTTP/1.1 server
on 127.0.0.1 started here; the markdown, ratio and percentile code runs on known
numbers; generation timing runs both real commands once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from http_stub import StubServer

from benchmarks import __main__ as cli
from benchmarks import (
    dockerutil,
    engine,
    generation,
    harness_adapter,
    images,
    limits,
    loadgen,
    replicas,
    report,
    serving,
    stats,
)
from benchmarks.run import REPO_ROOT, SECTIONS, RunOptions, render_project


@pytest.fixture
def server(http_stub: StubServer) -> str:
    """/busy answers 503, every other path 200."""
    http_stub.answer(200, {"status": "ok"})
    http_stub.answer(503, {"status": "busy"}, path="/busy")
    return http_stub.url


# ------------------------------------------------------------------ load generator


def test_loadgen_in_its_own_process_counts_every_answer(server: str) -> None:
    result = serving.run_load(
        server + "/ok",
        concurrency=4,
        duration=0.3,
        warmup=0.05,
        max_requests=2_000,
        cpus={min(os.sched_getaffinity(0))},
    )
    assert result["errors"] == 0
    assert result["ok"] == result["requests"] > 0
    assert result["status"] == {"200": result["requests"]}
    assert result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["throughput_rps"] > 0
    assert result["concurrency"] == 4


def test_loadgen_respects_the_request_bound(server: str) -> None:
    result = serving.run_load(server + "/ok", concurrency=2, duration=30, warmup=0, max_requests=25)
    assert result["requests"] == 25


def test_loadgen_posts_the_body_and_reports_non_2xx(server: str) -> None:
    body = json.dumps({"inputs": [[1.0, 2.0]]}).encode()
    posted = serving.run_load(
        server + "/predict", method="POST", body=body, concurrency=2, duration=0.2, warmup=0
    )
    assert posted["ok"] == posted["requests"] > 0
    busy = serving.run_load(server + "/busy", concurrency=2, duration=0.2, warmup=0)
    assert busy["ok"] == 0
    assert busy["throughput_rps"] == 0
    assert set(busy["status"]) == {"503"}


def test_loadgen_counts_connection_errors_without_crashing() -> None:
    # A port nothing listens on: every attempt fails, the run still ends on time.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = serving.run_load(f"http://127.0.0.1:{port}/", concurrency=2, duration=0.2, warmup=0)
    assert result["requests"] == 0
    assert result["errors"] > 0
    assert result["p99_ms"] is None


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3:80/",
        "https://127.0.0.1:8443/",
        "http://example.org:80/",
        "http://127.0.0.1/",
    ],
)
def test_loadgen_refuses_anything_but_loopback_with_one_line(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert loadgen.main([url, "--duration", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("loadgen: only http://127.0.0.1")
    assert "\n" not in err


def test_run_load_reports_a_failed_generator_as_load_error() -> None:
    with pytest.raises(loadgen.LoadError, match=r"only http://127\.0\.0\.1"):
        serving.run_load("http://192.0.2.1:80/", duration=0.1)


# ------------------------------------------------------------------ statistics


def test_percentiles_interpolate_between_ranks() -> None:
    # Linear interpolation between the closest ranks (numpy's default), as the figures
    # in docs/benchmarks.md were always computed: p50 of 1..100 is 50.5, p99 is 99.01.
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert stats.percentile(values, 50) == pytest.approx(50.5)
    assert stats.percentile(values, 99) == pytest.approx(99.01)
    assert stats.percentile([3.0, 1.0], 99) == pytest.approx(2.98)
    assert stats.percentile([7.0], 99) == 7.0
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 2.0, 3.0]) == stats.percentile([4.0, 1.0, 2.0, 3.0], 50)
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    for out_of_range in (0, 100):
        with pytest.raises(ValueError):
            stats.percentile([1.0, 2.0], out_of_range)


def test_ratio_math_and_targets() -> None:
    assert stats.ratio(30, 60) == 0.5
    assert stats.ratio(None, 1) is None
    assert stats.ratio(1, 0) is None
    assert stats.fmt_ratio(0.5) == "0.50x"
    assert stats.fmt_ratio(None) == "—"
    assert stats.meets(0.55, "<=", 0.6) is True
    assert stats.meets(2.5, ">=", 2.0) is True
    assert stats.meets(0.7, "<=", 0.6) is False
    assert stats.meets(None, "<=", 0.6) is None
    assert stats.fmt_bytes(1536) == "1.5 KiB"
    assert stats.fmt_bytes(3 * 1024**3) == "3.0 GiB"
    assert stats.fmt_seconds(0.25) == "250 ms"
    assert stats.fmt_seconds(42.0) == "42.0 s"


# ------------------------------------------------------------------ report


def _results() -> report.Results:
    res = report.Results(
        command="python -m benchmarks run --quick", started_utc="2026-01-01 00:00 UTC"
    )
    res.add(
        report.Row(
            "image.above_base",
            "Image",
            "bytes added above the base image",
            "bytes",
            500 * 1024**2,
            1000 * 1024**2,
            "naive",
            target=report.Target("ratio", "<=", 0.6),
        )
    )
    res.add(
        report.Row(
            "startup.container",
            "Start-up",
            "container start -> /ready",
            "s",
            6.5,
            target=report.Target("value", "<=", 5.0),
        )
    )
    res.add(report.Row("build.cold", "Build", "cold | build", "s", None, error="engine gone"))
    return res


def test_rows_carry_ratio_and_target_verdict() -> None:
    res = _results()
    above = res.get("image.above_base")
    assert above is not None and above.ratio == 0.5 and above.met is True
    startup = res.get("startup.container")
    assert startup is not None and startup.ratio is None and startup.met is False
    data = json.loads(res.to_json())
    assert data["rows"][0]["ratio"] == 0.5


def test_markdown_has_tables_targets_and_escaped_cells() -> None:
    text = report.render_markdown(_results())
    assert "python -m benchmarks run --quick" in text
    assert (
        "| bytes added above the base image | 500.0 MiB | 1000.0 MiB (naive) | 0.50x "
        "| <= 0.6x | yes |" in text
    )
    assert "| Start-up: container start -> /ready | <= 5.00 s | 6.50 s | **no** |" in text
    assert "cold \\| build" in text  # a pipe in a cell does not break the table
    assert "failed: engine gone" in text


def test_write_doc_replaces_only_the_results_block(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    report.write_doc(doc, _results())
    first = doc.read_text()
    assert report.RESULTS_START in first and report.RESULTS_END in first
    doc.write_text(
        "# Title\n\nProse kept.\n\n" + first[first.index(report.RESULTS_START) :] + "\nAfter.\n"
    )
    report.write_doc(doc, _results())
    second = doc.read_text()
    assert second.startswith("# Title\n\nProse kept.\n")
    assert second.rstrip().endswith("After.")
    assert second.count(report.RESULTS_START) == 1


def test_serving_and_breakdown_tables() -> None:
    point = {
        "model": "tiny",
        "batching": "on",
        "endpoint": "/predict",
        "concurrency": 32,
        "throughput_rps": 1234.5,
        "p50_ms": 10.0,
        "p99_ms": 30.0,
        "ok": 100,
        "requests": 100,
        "errors": 0,
    }
    failed = {
        "model": "heavy",
        "batching": "off",
        "endpoint": "/predict",
        "concurrency": 64,
        "error": "timeout",
    }
    table = report.serving_table([point, failed])
    assert "| tiny | on | /predict | 32 | 1,234 | 10.0 | 30.0 | 100 | 0 |" in table
    assert "timeout" in table
    table = report.breakdown_table(
        {"servegen": [("torch/lib", 400), ("numpy", 50)], "naive": [("torch/lib", 420)]}
    )
    assert "| torch/lib | 400 B | 420 B |" in table
    assert "| numpy | 50 B | — |" in table
    assert "| total | 450 B | 420 B |" in table
    table = report.breakdown_table({"a": [("x", 5), ("y", 3), ("z", 1)]}, limit=1)
    assert "| everything else (2 entries) | 4 B |" in table


def test_serving_rows_derive_the_targets_from_load_points() -> None:
    def p(model: str, batching: str, endpoint: str, rps: float, p99: float) -> dict[str, object]:
        return {
            "model": model,
            "batching": batching,
            "endpoint": endpoint,
            "concurrency": 32,
            "throughput_rps": rps,
            "p50_ms": p99 / 2,
            "p99_ms": p99,
            "ok": 10,
            "requests": 10,
        }

    points = [
        p("tiny", "on", "/predict", 600, 80),
        p("tiny", "on", "/health", 1000, 40),
        p("tiny", "off", "/predict", 500, 90),
        p("tiny", "off", "/health", 1000, 40),
        p("heavy", "on", "/predict", 300, 150),
        p("heavy", "off", "/predict", 100, 120),
    ]
    res = report.Results(command="x", started_utc="y")
    engine.serving_rows(res, points)
    assert res.get("serving.tiny_on").ratio == pytest.approx(0.6)  # type: ignore[union-attr]
    assert res.get("serving.heavy_rps").met is True  # type: ignore[union-attr]
    assert res.get("serving.heavy_p99").ratio == pytest.approx(1.25)  # type: ignore[union-attr]
    res = report.Results(command="x", started_utc="y")
    engine.serving_rows(res, points[:2])
    assert res.get("serving.heavy_rps").error == "load point missing"  # type: ignore[union-attr]


def test_median_round_keeps_the_middle_throughput_and_every_round() -> None:
    rounds: list[dict[str, Any]] = [
        {"endpoint": "/predict", "throughput_rps": 900.0, "p99_ms": 9.0},
        {"endpoint": "/predict", "throughput_rps": 700.0, "p99_ms": 7.0},
        {"endpoint": "/predict", "throughput_rps": 800.0, "p50_ms": 4.0, "p99_ms": 8.0},
    ]
    chosen = serving.median_round(rounds)
    assert chosen["throughput_rps"] == 800.0 and chosen["p99_ms"] == 8.0
    assert chosen["rounds_rps"] == [900.0, 700.0, 800.0]
    # A failed round ranks lowest; the median of (fail, 700, 900) is 700.
    failed: dict[str, Any] = {"endpoint": "/predict", "error": "load generator failed: x"}
    assert serving.median_round([failed, rounds[0], rounds[1]])["throughput_rps"] == 700.0
    assert serving.median_round([failed, failed])["error"]
    note = engine._latency_note(chosen, {"rounds_rps": [1000.0, 1100.0, 1050.0]})
    assert "p99 8.0 ms" in note and "/health rounds 1,000, 1,100, 1,050" in note


def test_predict_body_has_the_model_shape() -> None:
    body = json.loads(serving.predict_body([2, 3], items=2))
    assert len(body["inputs"]) == 2
    assert [len(row) for row in body["inputs"][0]] == [3, 3]
    assert json.loads(serving.predict_body([4]))["inputs"][0][0] == pytest.approx(-1.0)


# ------------------------------------------------------------------ images helpers


def test_layer_reuse_is_the_common_prefix() -> None:
    assert dockerutil.layer_reuse(["a", "b", "c"], ["a", "b", "d", "e"]) == (2, 2)
    assert dockerutil.layer_reuse(["a", "b"], ["a", "b"]) == (2, 0)
    assert dockerutil.layer_reuse(["x"], ["a", "b"]) == (0, 2)


def test_layer_table_marks_the_layers_a_rebuild_replaced() -> None:
    table = images.layer_table(
        {"cold": ["base", "sha256:venv1", "code1"], "code": ["base", "sha256:venv1", "code2"]},
        base_layers=1,
    )
    assert "| layer | after cold build | after code change |" in table
    assert "| 2 | venv1 | venv1 |" in table
    assert "| 3 | code1 | code2 (new) |" in table
    assert "base" not in table


def _fake_project(root: Path) -> Path:
    project = root / "model-service"
    (project / "src" / "model_service").mkdir(parents=True)
    (project / "src" / "model_service" / "__init__.py").write_text("")
    (project / "src" / "model_service" / "app.py").write_text("APP = 1\n")
    (project / "wheels").mkdir()
    (project / "wheels" / "demo-1.0-py3-none-any.whl").write_bytes(b"wheel")
    (project / "requirements.txt").write_text("demo==1.0\n")
    (project / "Dockerfile").write_text("FROM scratch\n")
    (project / ".dockerignore").write_text("*.pt\n")
    return project


def test_naive_copy_and_changes_stay_apart(tmp_path: Path) -> None:
    project = _fake_project(tmp_path)
    naive = images.make_naive_copy(project, tmp_path / "naive" / project.name)
    dockerfile = (naive / "Dockerfile").read_text()
    assert "COPY . /app" in dockerfile
    assert "ARG APP_MODULE=model_service.main:app" in dockerfile
    assert not (naive / ".dockerignore").exists()
    assert (project / ".dockerignore").exists()
    wheel = naive / "wheels" / "demo-1.0-py3-none-any.whl"
    assert os.path.samefile(wheel, project / "wheels" / wheel.name)  # hard link, no copy
    changed = images.change_code(project, "n1")
    assert changed.read_text().endswith("# benchmark code change n1\n")
    assert (naive / "src" / "model_service" / "app.py").read_text() == "APP = 1\n"
    images.change_requirements(project, "n1", "six==1.17.0")
    assert (project / "requirements.txt").read_text().splitlines()[-1] == "six==1.17.0"
    assert (naive / "requirements.txt").read_text() == "demo==1.0\n"


def test_harness_report_figures_are_found_at_any_depth() -> None:
    pytest.importorskip("generator.harness.build")
    from benchmarks import harness_adapter

    data = {"steps": [{"name": "up", "figures": {"startup_seconds": 4.2}}]}
    assert harness_adapter.find_figure(data, "startup_seconds") == 4.2
    assert harness_adapter.find_figure(data, "missing") is None


# ------------------------------------------------------------------ generation, CLI


def test_generation_timing_runs_both_commands_once() -> None:
    s_med, c_med, s_all, c_all = generation.compare(1)
    assert len(s_all) == len(c_all) == 1
    assert s_med > 0 and c_med > 0


def test_generation_failure_is_one_clear_error(tmp_path: Path) -> None:
    def broken(out: Path) -> list[str]:
        return [sys.executable, "-c", "raise SystemExit('template exploded')"]

    with pytest.raises(generation.GenerationError, match="template exploded"):
        generation.time_command(broken)


def test_cli_rejects_bad_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--only", "bogus"])
    assert exc.value.code == 2
    assert "unknown section bogus" in capsys.readouterr().err
    assert cli.main(["run", "--only", "generation", "--out", str(tmp_path / "no" / "x.md")]) == 2


def test_cli_generation_only_writes_the_doc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "benchmarks.md"
    code = cli.main(["run", "--quick", "--only", "generation", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "servegen new --no-input" in printed
    text = out.read_text()
    assert "python -m benchmarks run --quick --only generation --out" in text
    assert "| measurement | servegen | baseline | ratio | target | met | note |" in text


# ------------------------------------------------------------------ with an engine


@pytest.mark.docker
def test_image_figures_and_breakdown_on_the_standins(
    docker_client: object, standin_images: dict[str, str]
) -> None:
    python = standin_images["python"]
    base = os.environ.get("SERVEGEN_STANDIN_DEBIAN", "servegen-ci/debian:bookworm")
    figures = dockerutil.image_figures(docker_client, python, base)
    assert figures.above_base > 0
    assert figures.own_layers >= 1
    info = dockerutil.venv_breakdown(docker_client, python)
    assert info["entries"]  # Debian's python3 has a site-packages with something in it
    assert info["prefix_bytes"] >= sum(info["entries"].values())


def _tiny_wheel(folder: Path, name: str = "benchtiny", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel made here, so the build test needs no index."""
    import base64
    import hashlib
    import zipfile

    files = {
        f"{name}/__init__.py": b"VALUE = 1\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{name}-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


_TINY_DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS builder
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS=/wheels
RUN python -m venv /opt/venv
# The benchmark must pass the offline build arguments (the real Dockerfile needs them).
RUN test "${PIP_NO_INDEX}" = 1 && test "${PIP_FIND_LINKS}" = /wheels
RUN --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\
    --mount=type=bind,source=wheels,target=/wheels \\
    /opt/venv/bin/pip install --no-index --find-links /wheels -r /tmp/requirements.txt
FROM ${BASE_IMAGE}
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY src/ /app/src/
"""

_TINY_COMPOSE = """\
services:
  app:
    image: ${APP_IMAGE:-tiny-bench:latest}
    build:
      context: .
      args:
        BASE_IMAGE: ${BASE_IMAGE:-python:3.11-slim}
        PIP_NO_INDEX: ${BUILD_PIP_NO_INDEX:-}
"""


@pytest.mark.docker
@pytest.mark.slow
def test_build_section_on_a_tiny_project(
    docker_client: object, standin_images: dict[str, str], tmp_path: Path
) -> None:
    import uuid

    project = tmp_path / "tiny-service"
    (project / "src" / "tiny_service").mkdir(parents=True)
    (project / "src" / "tiny_service" / "__init__.py").write_text("")
    (project / "src" / "tiny_service" / "app.py").write_text("APP = 1\n")
    (project / "examples").mkdir()
    (project / "examples" / "predict_request.json").write_text('{"inputs": [[1.0]]}\n')
    (project / "wheels").mkdir()
    _tiny_wheel(project / "wheels")
    (project / "requirements.txt").write_text("# nothing pinned yet\n")
    (project / "Dockerfile").write_text(_TINY_DOCKERFILE)
    (project / "compose.yaml").write_text(_TINY_COMPOSE)
    (project / ".dockerignore").write_text("*.pt\n")
    run_id = "t" + uuid.uuid4().hex[:7]
    results = report.Results(command="test", started_utc="now")
    try:
        built = images.run(
            docker_client,
            work=tmp_path / "work",
            project_dir=project,
            base_image=standin_images["python"],
            run_id=run_id,
            results=results,
            progress=lambda _: None,
            extra_requirement="benchtiny==1.0",
        )
    finally:
        failed = dockerutil.remove_run_images(docker_client, run_id)
    assert failed == []
    assert set(built) == {"servegen", images.BASELINE}
    above = results.get("image.above_base")
    assert above is not None and above.value and above.baseline and above.ratio is not None
    # The multi-stage image rewrites only its code layer; the naive one reinstalls too.
    code = results.get("build.code")
    assert code is not None and code.note.startswith("layers rebuilt: 1 of ")
    naive_rebuilt = int(code.note.split(" vs ")[1].split(" of ")[0])
    assert naive_rebuilt >= 2
    share = results.get("build.code_only_layers")
    assert share is not None and share.value is not None and share.baseline is not None
    assert share.value < share.baseline
    assert set(results.breakdown) == {"servegen", images.BASELINE}
    assert len(results.tables) == 2 and "(new)" in results.tables[0][1]
    # Measured after the cold build: the venv holds pip (the extra pin came later).
    assert any(name == "pip" for name, _ in results.breakdown["servegen"])
    print(report.render_markdown(results))
    left = docker_client.images.list(name="servegen-bench/*")  # type: ignore[attr-defined]
    assert not [t for img in left for t in img.tags if run_id in t]


@pytest.mark.docker
@pytest.mark.slow
def test_database_for_the_prediction_log_starts_and_leaves_nothing(
    docker_client: object, standin_images: dict[str, str]
) -> None:
    import uuid

    run_id = "t" + uuid.uuid4().hex[:7]
    flt = {"label": f"{dockerutil.LABEL}={run_id}"}
    try:
        with dockerutil.network(docker_client, f"servegen-bench-{run_id}", run_id) as net:
            db = dockerutil.start_db(
                docker_client,
                standin_images["mysql"],
                name=f"bench-db-{run_id}",
                network=net,
                run_id=run_id,
                password="a-real-secret-1",
                database="bench",
            )
            code, out = db.exec_run(
                ["mysqladmin", "-h", "127.0.0.1", "-uapp", "-pa-real-secret-1", "status"]
            )
            assert code == 0, out
            assert dockerutil.cleanup(docker_client, run_id) == []
    finally:
        dockerutil.cleanup(docker_client, run_id)
    client: Any = docker_client
    assert client.containers.list(all=True, filters=flt) == []
    assert client.networks.list(filters=flt) == []
    assert client.volumes.list(filters=flt) == []


# ------------------------------------------------------------------ format and image variants


def test_variants_render_with_their_answers(tmp_path: Path) -> None:
    from benchmarks import variants

    project = variants.render_variant(tmp_path, model_format="export", task="image-classification")
    answers = (project / ".servegen-answers.yml").read_text(encoding="utf-8")
    assert 'model_format: "export"' in answers and 'task: "image-classification"' in answers
    assert set(variants.MODEL_FILES) == set(variants.FORMATS)


def test_format_rows_compare_each_format_with_torchscript(tmp_path: Path) -> None:
    from benchmarks import variants

    class Bench:
        results = report.Results(command="test", started_utc="now")

    def figures(fmt: str, added: int, load: float, rps: float) -> Any:
        got = variants.FormatFigures(fmt, variants.Built(tmp_path, "img", added))
        got.loads = [load, load * 2, load / 2]
        got.points = [
            {
                "model": got.label,
                "batching": "on",
                "endpoint": "/predict",
                "concurrency": 32,
                "throughput_rps": rps,
                "p50_ms": 5.0,
            },
            {
                "model": got.label,
                "batching": "on",
                "endpoint": "/predict",
                "concurrency": 1,
                "throughput_rps": rps / 10,
                "p50_ms": 1.0,
            },
        ]
        return got

    base = figures("torchscript", 100, 0.01, 2000.0)
    bench: Any = Bench()
    variants._format_rows(bench, base, None)
    variants._format_rows(bench, figures("export", 150, 1.5, 1000.0), base)
    rows = {row.key: row for row in bench.results.rows}
    assert rows["formats.torchscript.load"].value == 0.01
    assert rows["formats.torchscript.load"].ratio is None
    assert rows["formats.export.bytes"].ratio == 1.5
    assert rows["formats.export.load"].ratio == 150.0
    assert rows["formats.export.rps32"].ratio == 0.5
    assert rows["formats.export.p50_1"].ratio == 1.0
    assert "median of 1.500, 3.000, 0.750 s" in rows["formats.export.load"].note


# ------------------------------------------------------------------ fixed-rate mode


def test_fixed_rate_offers_the_rate_it_is_asked_for(server: str) -> None:
    result = serving.run_load(
        server + "/ok", rate=300, concurrency=8, duration=1.0, warmup=0.2, max_requests=10_000
    )
    assert result["mode"] == "fixed-rate"
    assert result["offered_rps"] == pytest.approx(300, rel=0.02)
    assert result["achieved_rps"] == pytest.approx(300, rel=0.15)
    assert result["unsent"] == 0 and result["errors"] == 0


class _Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        time.sleep(0.05)  # at most 20 answers a second on one connection
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


def test_fixed_rate_counts_the_wait_of_requests_a_slow_server_delays() -> None:
    # Offered 100/s on one connection to a server that answers 20/s: a closed loop
    # would just slow down and report 50 ms; the open loop reports the backlog.
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/slow"
        result = serving.run_load(url, rate=100, concurrency=1, duration=1.0, warmup=0.0)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result["achieved_rps"] < 40
    assert result["unsent"] > 30
    assert result["p99_ms"] > 300  # far above the 50 ms a single answer takes
    assert result["shortfall"] > 0.5


def test_replica_counts_and_sections() -> None:
    assert replicas.replica_counts(quick=True) == (1, 2)
    assert replicas.replica_counts(quick=False) == (1, 2, 4)
    assert "replicas" in SECTIONS


@pytest.mark.docker
@pytest.mark.slow
def test_replicas_section_runs_the_projects_proxy_in_front_of_replicas(
    docker_client: object, standin_images: dict[str, str], tmp_path: Path
) -> None:
    """A short functional run (quick plan, tiny model): rows, and nothing left behind."""
    import uuid

    from benchmarks.engine import EngineRun
    from generator.harness import wheelhouse
    from generator.harness.project import load_project

    wheels = Path(
        os.environ.get("SERVEGEN_WHEELHOUSE_CACHE", str(REPO_ROOT / ".cache" / "wheelhouse"))
    )
    if not any(wheels.glob("*.whl")):
        pytest.skip(f"no wheelhouse at {wheels} (the harness tests fill it)")
    project_dir = render_project(tmp_path / "render")
    wheelhouse.link_dir(load_project(project_dir), wheels)
    run_id = "t" + uuid.uuid4().hex[:7]
    opts = RunOptions(
        quick=True,
        sections=("replicas",),
        base_image=standin_images["python"],
        proxy_image=standin_images["haproxy"],
    )
    results = report.Results(command="test", started_utc="now")
    bench = EngineRun(docker_client, results, opts, run_id, tmp_path / "work", lambda _: None)
    image = bench.image_tag("servegen")
    try:
        harness_adapter.build(
            harness_adapter.BuildTarget(
                project_dir, image, f"sgbench-{run_id}-s", standin_images["python"]
            )
        )
        bench.model_dir.mkdir(parents=True)
        sha = dockerutil.make_model(docker_client, image, bench.model_dir, [], "model.safetensors")
        tiny = serving.ModelSpec("tiny", "model.safetensors", sha, ())
        port = harness_adapter.project(project_dir).api_port
        with dockerutil.network(docker_client, bench.network, run_id):
            replicas.replicas_section(
                bench, image, project_dir, port, {"DB_ENABLED": "false"}, [tiny]
            )
        assert dockerutil.cleanup(docker_client, run_id) == []
    finally:
        dockerutil.cleanup(docker_client, run_id)
        failed = dockerutil.remove_run_images(docker_client, run_id)
    assert failed == []
    assert results.failures == []
    # The tiny model stands in for the heavier one: 2 replicas against 1, same proxy.
    scaled = results.get("replicas.tiny_x2")
    assert scaled is not None and scaled.value and scaled.baseline
    if opts.plan.server_cpuset:  # then the same again with every CPU shared by all
        spread = results.get("replicas.tiny_x2_all_cpus")
        assert spread is not None and spread.value and spread.baseline
    for endpoint in ("predict", "health"):
        cost = results.get(f"replicas.proxy_{endpoint}")
        assert cost is not None and cost.value and cost.baseline, endpoint
    # The serving target, both sides through the proxy.
    target = results.get("replicas.proxy_predict_vs_floor")
    assert target is not None and target.value and target.baseline and target.target
    endpoints = {p["endpoint"] for p in results.serving}
    assert endpoints >= {"/predict via proxy", "/predict direct", "/health via proxy"}
    assert all(p.get("failed", 0) == 0 and not p.get("error") for p in results.serving)
    print(report.render_markdown(results))


def test_the_heavy_model_ceiling_is_the_floor_and_the_forward_pass_in_series() -> None:
    from types import SimpleNamespace

    results = report.Results(command="test", started_utc="now")
    bench: Any = SimpleNamespace(results=results)
    # 1 / (1/4,000 + 1/4,000) = 2,000 items/s at most; 1,500 served is 0.75x of it.
    limits._ceiling_rows(bench, 1500.0, 4000.0, {15: 4000.0, 32: 8000.0}, 15, 250.0, 31.5)
    ceiling = results.get("limits.heavy_vs_ceiling")
    assert ceiling is not None and ceiling.baseline == pytest.approx(2000.0)
    assert ceiling.ratio == pytest.approx(0.75)
    assert "0.25x the forward rate at 32" in ceiling.note
    multi = results.get("limits.heavy_multi_vs_forward")
    assert multi is not None and multi.value == 250.0 * limits.MULTI_ITEMS
    assert multi.baseline == 8000.0 and "31.5 items" in multi.note
