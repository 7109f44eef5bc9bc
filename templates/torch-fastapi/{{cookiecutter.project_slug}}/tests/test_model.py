{%- set pkg = cookiecutter.package_name -%}
{%- set fmt = cookiecutter.model_format -%}
{%- set image = cookiecutter.task == "image-classification" -%}
"""Loading the model ({{ fmt }}): good, wrong checksum, missing, corrupt, metadata, no GPU."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from {{ pkg }} import formats
from {{ pkg }}.handler import Handler
from {{ pkg }}.handler_base import ModelMeta
from {{ pkg }}.model import (
    ModelLoadError,
    load_model,
)
from {{ pkg }}.settings import Settings

from conftest import DEMO_NAME, MODEL_FILE, PROJECT_DIR, make_model, serve


def load(settings: Settings) -> tuple[Handler, ModelMeta]:
    """Load the model named by ``settings`` into a new handler."""
    handler = Handler()
    return handler, load_model(settings, handler)


def write(path: Path, module: torch.nn.Module, meta: dict[str, Any]) -> Path:
    """Save ``module`` in this project's format, with ``meta``."""
    path.write_bytes(formats.dumps(module, meta))
    return path


def test_good_model_loads_with_its_metadata(settings_factory: Callable[..., Settings]) -> None:
    handler, meta = load(settings_factory())
    assert meta.name == DEMO_NAME
    assert meta.format == {{ fmt | json_str }}
{%- if image %}
    assert meta.input_shape == (3, 32, 32)
    assert meta.output_shape == (10,)
    assert meta.labels is not None and len(meta.labels) == 10
{%- else %}
    assert meta.input_shape == (4,)
    assert meta.output_shape == (3,)
{%- endif %}
    rows = handler.run([handler.preprocess(handler.example())] * 2)
    assert len(rows) == 2 and tuple(rows[0].shape) == meta.output_shape


def test_demo_model_is_deterministic(tmp_path: Path, demo_model: tuple[Path, str]) -> None:
    again = make_model(tmp_path / MODEL_FILE)
    assert again == demo_model[1]
    assert (tmp_path / MODEL_FILE).read_bytes() == demo_model[0].read_bytes()
    # The same bytes from a copy of the project elsewhere (as in a container's /app).
    elsewhere = tmp_path / "elsewhere"
    for folder in ("src", "scripts"):
        shutil.copytree(PROJECT_DIR / folder, elsewhere / folder)
    script = elsewhere / "scripts" / "make_demo_model.py"
    result = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "x")],
        check=True,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == demo_model[1]


def test_heavy_demo_model(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    path = tmp_path / MODEL_FILE
    digest = make_model(path, "--heavy")
    _, meta = load(settings_factory(model_path=path, model_sha256=digest))
    assert meta.name == DEMO_NAME.replace("small", "heavy")
{%- if image %}
    assert meta.input_shape == (3, 96, 96)
{%- else %}
    assert meta.input_shape == (512,)
    assert path.stat().st_size > 10_000_000  # heavy enough for batching to pay off
{%- endif %}


def test_wrong_sha256_is_refused(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ModelLoadError, match="but MODEL_SHA256 is 0000"):
        load(settings_factory(model_sha256="0" * 64))


def test_missing_file_is_refused(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model file not found"):
        load(settings_factory(model_path=tmp_path / "nope", model_sha256=None))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_file_is_refused(
    settings_factory: Callable[..., Settings],
    demo_model: tuple[Path, str],
    tmp_path: Path,
    damage: str,
) -> None:
    bad = tmp_path / MODEL_FILE
    if damage == "garbage":
        bad.write_bytes(b"this is not a model file" * 10)
    else:
        data = demo_model[0].read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="cannot be loaded as a {{ fmt }} model"):
        load(settings_factory(model_path=bad, model_sha256=None))
{%- if fmt == "state_dict" %}


def test_weights_that_do_not_fit_the_network_are_refused(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    # The header says one size, the tensors are of another: load_state_dict refuses.
    from {{ pkg }}.networks import {{ "cnn" if image else "mlp" }}
{% if image %}
    module = cnn([4], 10)
    meta = {"input_shape": [3, 32, 32], "config": {"channels": [8, 16], "classes": 10}}
{%- else %}
    module = mlp(4, [8], 3)
    meta = {"input_shape": [4], "config": {"features": 4, "hidden": [16], "outputs": 3}}
{%- endif %}
    path = write(tmp_path / MODEL_FILE, module, meta)
    with pytest.raises(ModelLoadError, match="cannot be loaded as a state_dict model"):
        load(settings_factory(model_path=path, model_sha256=None))


def test_a_file_without_metadata_says_what_is_missing(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    from {{ pkg }}.networks import {{ "cnn" if image else "mlp" }}

    path = tmp_path / MODEL_FILE
{%- if image %}
    save_file(cnn([8, 16], 10).state_dict(), str(path))
{%- else %}
    save_file(mlp(4, [16], 3).state_dict(), str(path))
{%- endif %}
    # The demo handler builds its network from the sizes stored with the weights.
    with pytest.raises(ModelLoadError, match="KeyError: 'config'"):
        load(settings_factory(model_path=path, model_sha256=None))
{%- else %}


def _bare(path: Path, module: torch.nn.Module, example: torch.Tensor) -> Path:
    """Save ``module`` with no metadata at all."""
{%- if fmt == "torchscript" %}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module.eval()), str(path))
{%- else %}
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(module.eval(), (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
{%- endif %}
    return path
{%- if image %}


def test_model_without_metadata_needs_an_image_shape(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    from {{ pkg }}.networks import cnn

    plain = _bare(tmp_path / MODEL_FILE, cnn([4], 3), torch.zeros(2, 3, 16, 16))
    with pytest.raises(ModelLoadError, match=r"an image model takes \[3, height, width\]"):
        load(settings_factory(model_path=plain, model_sha256=None))
    handler, meta = load(
        settings_factory(model_path=plain, model_sha256=None, model_input_shape="3,16,16")
    )
    assert meta.input_shape == (3, 16, 16)
    assert meta.output_shape == (3,)
    assert meta.name == plain.stem
    # Without label names, the labels are the class indices.
    output = handler.postprocess(handler.run([handler.preprocess(handler.example())])[0])
    assert {label.label for label in output.labels} == {"0", "1", "2"}
{%- else %}


def test_model_without_metadata_needs_a_shape(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    plain = _bare(tmp_path / MODEL_FILE, torch.nn.Linear(6, 2), torch.zeros(2, 6))
    with pytest.raises(ModelLoadError, match="set MODEL_INPUT_SHAPE"):
        load(settings_factory(model_path=plain, model_sha256=None))
    _, meta = load(
        settings_factory(
            model_path=plain, model_sha256=None, model_input_shape="6", model_version="v7"
        )
    )
    assert meta.input_shape == (6,)
    assert meta.output_shape == (2,)
    assert meta.version == "v7"
    assert meta.name == plain.stem


def test_wrong_declared_shape_fails_the_start_up_example(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    plain = _bare(tmp_path / MODEL_FILE, torch.nn.Linear(6, 2), torch.zeros(2, 6))
    with pytest.raises(ModelLoadError, match="start-up example failed in the forward pass"):
        load(settings_factory(model_path=plain, model_sha256=None, model_input_shape="5"))
{%- endif %}
{%- endif %}


def test_declared_output_shape_is_checked(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    from {{ pkg }}.networks import {{ "cnn" if image else "mlp" }}
{% if image %}
    config = {"channels": [8], "classes": 10}
    meta = {"input_shape": [3, 32, 32], "output_shape": [7], "config": config}
    path = write(tmp_path / MODEL_FILE, cnn([8], 10), meta)
{%- else %}
    config = {"features": 4, "hidden": [], "outputs": 3}
    meta = {"input_shape": [4], "output_shape": [7], "config": config}
    path = write(tmp_path / MODEL_FILE, mlp(4, [], 3), meta)
{%- endif %}
    with pytest.raises(ModelLoadError, match="but its metadata declares"):
        load(settings_factory(model_path=path, model_sha256=None))


def test_metadata_wins_over_settings(settings_factory: Callable[..., Settings]) -> None:
    _, meta = load(settings_factory(model_input_shape="7", model_input_dtype="int64"))
    assert meta.input_shape == {{ "(3, 32, 32)" if image else "(4,)" }}
    assert meta.input_dtype == "float32"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_clear_error(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ModelLoadError, match="DEVICE=cuda but no CUDA device"):
        load(settings_factory(device="cuda"))


def test_failed_load_is_not_ready(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    async def go() -> None:
        settings = settings_factory(model_path=tmp_path / "missing", model_sha256=None)
        async with serve(settings) as (_, client):
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["state"] == "failed"
            assert "model file not found" in health.json()["error"]
            ready = await client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["ready"] is False
            predict = await client.post("/predict", json={"inputs": []})
            assert predict.status_code == 503
            assert predict.json()["detail"] == "the model is not ready (state: failed)"
            assert predict.headers["retry-after"] == "1"
            metrics = (await client.get("/metrics")).text
            assert "model_ready 0.0" in metrics

    asyncio.run(go())


def test_starting_state_answers_health_but_not_ready(
    settings_factory: Callable[..., Settings],
) -> None:
    import httpx

    from {{ pkg }}.app import create_app
    from {{ pkg }}.state import Runtime

    async def go() -> None:
        # No lifespan yet: the app is in its first state, as during a long model load.
        app = create_app(settings_factory())
        runtime: Runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            health = await client.get("/health")
            assert (health.status_code, health.json()["state"]) == (200, "starting")
            ready = await client.get("/ready")
            assert (ready.status_code, ready.json()["state"]) == (503, "starting")
        assert runtime.meta is None

    asyncio.run(go())
