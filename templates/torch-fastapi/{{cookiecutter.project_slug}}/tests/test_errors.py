{%- set pkg = cookiecutter.package_name -%}
"""Failures in the model or the handler: a 500 for the requests concerned only, counted."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

from {{ pkg }}.handler import (
    Handler,
    Input,
    Output,
)
from {{ pkg }}.settings import Settings

from conftest import is_poison, item, poison, serve


class Picky(Handler):
    """The project's handler, but its model fails on the poison item."""

    def preprocess(self, item: Input) -> torch.Tensor:
        tensor = super().preprocess(item)
        return torch.full_like(tensor, float("nan")) if is_poison(item) else tensor

    def predict(self, batch: Any) -> Any:
        if bool(torch.isnan(batch).any()):
            raise RuntimeError("poisoned input")
        return super().predict(batch)


@pytest.mark.parametrize("batching", [True, False])
def test_failing_forward_is_a_500_for_that_request_only(
    settings_factory: Callable[..., Settings], batching: bool
) -> None:
    async def go() -> None:
        settings = settings_factory(batching_enabled=batching, batch_max_wait_ms=50)
        async with serve(settings, Picky()) as (_, client):
            good, bad = await asyncio.gather(
                client.post("/predict", json={"inputs": [item()]}),
                client.post("/predict", json={"inputs": [poison()]}),
            )
            assert good.status_code == 200, good.text
            assert bad.status_code == 500
            assert bad.json()["detail"] == "inference failed: RuntimeError: poisoned input"
            metrics = (await client.get("/metrics")).text
            errors = re.search(r"^inference_errors_total (\S+)$", metrics, re.M)
            assert errors is not None
            # Batched, a shared pass may fail too before each request is retried alone.
            assert float(errors.group(1)) in ((1.0, 2.0) if batching else (1.0,))

    asyncio.run(go())


class NotANumber(Handler):
    """The project's handler, but its model answers NaN and -infinity."""

    def predict(self, batch: Any) -> Any:
        out = super().predict(batch).clone()
        out[:, 0] = float("nan")
        out[:, 1:] = float("-inf")
        return out


def test_nan_and_infinite_outputs_are_sent_as_null(
    settings_factory: Callable[..., Settings],
) -> None:
    async def go() -> None:
        async with serve(settings_factory(), NotANumber()) as (_, client):
            response = await client.post("/predict", json={"inputs": [item()]})
            assert response.status_code == 200, response.text
            # Strict JSON: no bare NaN or -Infinity tokens in the body.
            assert b"NaN" not in response.content and b"Infinity" not in response.content
            assert "null" in response.text
            response.json()

    asyncio.run(go())


class Broken(Handler):
    """The project's handler with a bug: in ``preprocess`` of the poison item, or in
    every ``postprocess`` after the start-up example's."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.answered = 0

    def preprocess(self, item: Input) -> torch.Tensor:
        if self.where == "preprocess" and is_poison(item):
            raise KeyError("bug in preprocess")
        return super().preprocess(item)

    def postprocess(self, row: torch.Tensor) -> Output:
        self.answered += 1
        if self.where == "postprocess" and self.answered > 1:
            raise ZeroDivisionError("bug in postprocess")
        return super().postprocess(row)


def test_a_bug_in_preprocess_is_a_500_for_that_request_only(
    settings_factory: Callable[..., Settings],
) -> None:
    async def go() -> None:
        async with serve(settings_factory(), Broken("preprocess")) as (_, client):
            good, bad = await asyncio.gather(
                client.post("/predict", json={"inputs": [item()]}),
                client.post("/predict", json={"inputs": [poison()]}),
            )
            assert good.status_code == 200, good.text
            assert bad.status_code == 500
            assert bad.json()["detail"] == "preprocess failed: KeyError: 'bug in preprocess'"

    asyncio.run(go())


def test_a_bug_in_postprocess_is_a_500_not_a_crash(
    settings_factory: Callable[..., Settings],
) -> None:
    async def go() -> None:
        async with serve(settings_factory(), Broken("postprocess")) as (_, client):
            response = await client.post("/predict", json={"inputs": [item()]})
            assert response.status_code == 500
            assert response.json()["detail"] == (
                "postprocess failed: ZeroDivisionError: bug in postprocess"
            )
            assert (await client.get("/health")).status_code == 200

    asyncio.run(go())
