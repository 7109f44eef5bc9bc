"""Model loading: good file, wrong checksum, missing, corrupt, no metadata, no GPU."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from conftest import SCRIPTS, make_model, serve
from {{ cookiecutter.package_name }}.model import ModelLoadError, load_model
from {{ cookiecutter.package_name }}.settings import Settings


def test_good_model_loads_with_its_metadata(settings_factory: Callable[..., Settings]) -> None:
    model = load_model(settings_factory())
    assert model.meta.name == "demo-mlp-small"
    assert model.meta.input_shape == (4,)
    assert model.meta.output_shape == (3,)
    out = model.forward(torch.zeros(2, 4))
    assert tuple(out.shape) == (2, 3)


def test_demo_model_is_deterministic(tmp_path: Path, demo_model: tuple[Path, str]) -> None:
    again = make_model(tmp_path / "again.pt")
    assert again == demo_model[1]
    assert (tmp_path / "again.pt").read_bytes() == demo_model[0].read_bytes()
    # The same bytes from a copy of the script elsewhere (as in a container's /app).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(SCRIPTS / "make_demo_model.py", elsewhere)
    result = subprocess.run(
        [sys.executable, str(elsewhere / "make_demo_model.py"), "--out", str(tmp_path / "x.pt")],
        check=True,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == demo_model[1]


def test_heavy_demo_model(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    path = tmp_path / "heavy.pt"
    digest = make_model(path, "--heavy")
    model = load_model(settings_factory(model_path=path, model_sha256=digest))
    assert model.meta.name == "demo-mlp-heavy"
    assert model.meta.input_shape == (512,)
    assert model.meta.output_shape == (10,)
    assert path.stat().st_size > 10_000_000  # heavy enough for batching to pay off


def test_wrong_sha256_is_refused(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ModelLoadError, match="but MODEL_SHA256 is 0000"):
        load_model(settings_factory(model_sha256="0" * 64))


def test_missing_file_is_refused(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model file not found"):
        load_model(settings_factory(model_path=tmp_path / "nope.pt", model_sha256=None))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_file_is_refused(
    settings_factory: Callable[..., Settings],
    demo_model: tuple[Path, str],
    tmp_path: Path,
    damage: str,
) -> None:
    bad = tmp_path / "bad.pt"
    if damage == "garbage":
        bad.write_bytes(b"this is not a torchscript archive" * 10)
    else:
        bad.write_bytes(demo_model[0].read_bytes()[:2000])
    with pytest.raises(ModelLoadError, match="not a loadable TorchScript archive"):
        load_model(settings_factory(model_path=bad, model_sha256=None))


def test_model_without_metadata_needs_a_shape(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(6, 2).eval()), str(plain))
    with pytest.raises(ModelLoadError, match="set MODEL_INPUT_SHAPE"):
        load_model(settings_factory(model_path=plain, model_sha256=None))
    model = load_model(
        settings_factory(
            model_path=plain, model_sha256=None, model_input_shape="6", model_version="v7"
        )
    )
    assert model.meta.input_shape == (6,)
    assert model.meta.output_shape == (2,)
    assert model.meta.version == "v7"
    assert model.meta.name == "plain"


def test_wrong_declared_shape_fails_the_warm_up(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(6, 2).eval()), str(plain))
    with pytest.raises(ModelLoadError, match="warm-up forward pass failed"):
        load_model(settings_factory(model_path=plain, model_sha256=None, model_input_shape="5"))


def test_metadata_wins_over_settings(settings_factory: Callable[..., Settings]) -> None:
    model = load_model(settings_factory(model_input_shape="7", model_input_dtype="int64"))
    assert model.meta.input_shape == (4,)
    assert model.meta.input_dtype == "float32"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_clear_error(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ModelLoadError, match="DEVICE=cuda but no CUDA device"):
        load_model(settings_factory(device="cuda"))


def test_failed_load_is_not_ready(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    async def go() -> None:
        settings = settings_factory(model_path=tmp_path / "missing.pt", model_sha256=None)
        async with serve(settings) as (_, client):
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["state"] == "failed"
            assert "model file not found" in health.json()["error"]
            ready = await client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["ready"] is False
            predict = await client.post("/predict", json={"inputs": [[1, 2, 3, 4]]})
            assert predict.status_code == 503
            assert predict.json()["detail"] == "the model is not ready (state: failed)"
            metrics = (await client.get("/metrics")).text
            assert "model_ready 0.0" in metrics

    asyncio.run(go())


def test_starting_state_answers_health_but_not_ready(
    settings_factory: Callable[..., Settings],
) -> None:
    import httpx

    from {{ cookiecutter.package_name }}.app import create_app
    from {{ cookiecutter.package_name }}.state import Runtime

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
        assert runtime.model is None

    asyncio.run(go())
