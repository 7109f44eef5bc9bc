"""A model that fails on some inputs: 500 for those requests only, counted."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from conftest import serve
from {{ cookiecutter.package_name }}.settings import Settings


class Picky(torch.nn.Module):
    """Doubles its input, and refuses negative numbers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x < 0).any()):
            raise RuntimeError("negative input")
        return x * 2


@pytest.fixture
def picky_model(tmp_path: Path) -> Path:
    path = tmp_path / "picky.pt"
    meta = {"name": "picky", "version": "3", "input_shape": [2], "output_shape": [2]}
    scripted = torch.jit.script(Picky().eval())
    torch.jit.save(scripted, str(path), _extra_files={"model_meta.json": json.dumps(meta)})
    return path


@pytest.mark.parametrize("batching", [True, False])
def test_failing_forward_is_a_500_for_that_request_only(
    settings_factory: Callable[..., Settings], picky_model: Path, batching: bool
) -> None:
    async def go() -> None:
        settings = settings_factory(
            model_path=picky_model,
            model_sha256=None,
            batching_enabled=batching,
            batch_max_wait_ms=50,
        )
        async with serve(settings) as (_, client):
            good, bad = await asyncio.gather(
                client.post("/predict", json={"inputs": [[1, 2]]}),
                client.post("/predict", json={"inputs": [[-1, 2]]}),
            )
            assert good.status_code == 200
            assert good.json()["outputs"] == [[2.0, 4.0]]
            assert bad.status_code == 500
            assert bad.json()["detail"] == "inference failed: builtins.RuntimeError: negative input"
            metrics = (await client.get("/metrics")).text
            errors = re.search(r"^inference_errors_total (\S+)$", metrics, re.M)
            assert errors is not None
            # Batched, a shared pass may fail too before each request is retried alone.
            assert float(errors.group(1)) in ((1.0, 2.0) if batching else (1.0,))

    asyncio.run(go())


class Log(torch.nn.Module):
    """log(x): NaN below zero, -infinity at zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x)


def test_nan_and_infinite_outputs_are_sent_as_null(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    path = tmp_path / "log.pt"
    meta = {"name": "log", "version": "1", "input_shape": [3], "output_shape": [3]}
    scripted = torch.jit.script(Log().eval())
    torch.jit.save(scripted, str(path), _extra_files={"model_meta.json": json.dumps(meta)})

    async def go() -> None:
        async with serve(settings_factory(model_path=path, model_sha256=None)) as (_, client):
            response = await client.post("/predict", json={"inputs": [[-1, 0, 1]]})
            assert response.status_code == 200
            # Strict JSON: no bare NaN or -Infinity tokens in the body.
            assert b"NaN" not in response.content and b"Infinity" not in response.content
            assert response.json()["outputs"] == [[None, None, 0.0]]

    asyncio.run(go())
