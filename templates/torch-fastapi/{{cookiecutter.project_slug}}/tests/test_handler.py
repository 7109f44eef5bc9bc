{%- set pkg = cookiecutter.package_name -%}
{%- set image = cookiecutter.task == "image-classification" -%}
"""The handler seam: what the service calls, where, and what it never assumes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from {{ pkg }}.handler import (
    Handler,
    Input,
{{ "    Label,\n" if image }}    Output,
)
from {{ pkg }}.handler_base import Loaded
from {{ pkg }}.settings import Settings

from conftest import item, serve


class Recording(Handler):
    """The project's handler, noting which thread runs each step and in which mode."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def _note(self, step: str) -> None:
        self.seen.append((step, threading.current_thread().name, torch.is_inference_mode_enabled()))

    def preprocess(self, item: Input) -> torch.Tensor:
        assert isinstance(item, Input)
        self._note("preprocess")
        return super().preprocess(item)

    def predict(self, batch: Any) -> Any:
        self._note("predict")
        return super().predict(batch)

    def postprocess(self, row: torch.Tensor) -> Output:
        self._note("postprocess")
        return super().postprocess(row)


def test_steps_run_where_documented(settings_factory: Callable[..., Settings]) -> None:
    handler = Recording()

    async def go() -> None:
        async with serve(settings_factory(), handler) as (_, client):
            handler.seen.clear()  # forget the start-up example
            response = await client.post("/predict", json={"inputs": [item(1), item(2)]})
            assert response.status_code == 200, response.text

    asyncio.run(go())
    steps = [step for step, _, _ in handler.seen]
    assert steps == ["preprocess", "preprocess", "predict", "postprocess", "postprocess"]
    threads = {step: thread for step, thread, _ in handler.seen}
    assert threads["predict"].startswith("inference")
    assert threads["postprocess"] == "MainThread"
    assert (threads["preprocess"] == "MainThread") is not Handler.preprocess_in_thread
    modes = {step: mode for step, _, mode in handler.seen}
    assert modes == {"preprocess": False, "predict": True, "postprocess": False}


class Failing(Handler):
    """A handler whose postprocess cannot work: the start-up example must catch it."""

    def postprocess(self, row: torch.Tensor) -> Output:
        raise ValueError("labels file missing")


def test_a_handler_that_cannot_answer_fails_at_start_up(
    settings_factory: Callable[..., Settings],
) -> None:
    async def go() -> None:
        async with serve(settings_factory(), Failing()) as (_, client):
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["error"] == (
                "the start-up example failed in postprocess: ValueError: labels file missing"
            )

    asyncio.run(go())


class Plain(Handler):
    """A handler with no tensors at all: the service must not care what items are."""

    def load(self, path: Path, device: torch.device) -> Loaded:
        # Any callable serves as the model; the metadata is whatever the handler says.
        model = lambda batch: [len(str(entry)) for entry in batch]  # noqa: E731
        return Loaded(model=model, meta={"name": "plain"})

    def example(self) -> Input:
        return Input.model_validate(item())

    def preprocess(self, item: Input) -> Any:
        return item

    def batch(self, items: list[Any]) -> Any:
        return list(items)

    def unbatch(self, output: Any) -> list[Any]:
        return list(output)

    def postprocess(self, row: Any) -> Output:
{%- if image %}
        return Output(labels=[Label(label=str(row), score=1.0)])
{%- else %}
        return Output([float(row)])
{%- endif %}


def test_items_and_rows_need_not_be_tensors(settings_factory: Callable[..., Settings]) -> None:
    async def go() -> None:
        settings = settings_factory(batching_enabled=True, batch_max_wait_ms=20)
        async with serve(settings, Plain()) as (_, client):
            model = (await client.get("/model")).json()
            assert model["name"] == "plain"
            responses = await asyncio.gather(
                *(client.post("/predict", json={"inputs": [item(n)]}) for n in range(6))
            )
        for response in responses:
            assert response.status_code == 200, response.text
            assert len(response.json()["outputs"]) == 1

    asyncio.run(go())
