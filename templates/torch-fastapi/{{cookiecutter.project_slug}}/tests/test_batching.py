{%- set pkg = cookiecutter.package_name -%}
"""Micro-batching: same answers as alone, bounded batches, one answer per caller, always.

The runner tests give it plain numbers instead of tensors: it only ever passes items
through to the handler, and must work whatever they are. Timing-sensitive behaviour
is asserted through ordering and counts (which pass started when, with what), with
generous windows, so a loaded machine cannot make these tests flaky.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from {{ pkg }}.batching import (
    Arrivals,
    InferenceRunner,
    OverloadedError,
    StoppedError,
)
from {{ pkg }}.handler import Handler, Input
from {{ pkg }}.metrics import Metrics
from {{ pkg }}.model import load_model
from {{ pkg }}.settings import Settings

from conftest import item, serve, wait_for


def _batch_sizes(metrics_text: str) -> dict[str, float]:
    pattern = re.compile(r'^inference_batch_size_bucket\{le="([^"]+)"\} (\S+)$', re.M)
    return {le: float(v) for le, v in pattern.findall(metrics_text)}


def _alone(settings: Settings, items: list[Any]) -> list[Any]:
    """Each item's output when it is predicted by itself, through the handler."""
    handler = Handler()
    load_model(settings, handler)
    outputs = []
    for value in items:
        (row,) = handler.run([handler.preprocess(Input.model_validate(value))])
        outputs.append(handler.postprocess(row).model_dump(mode="json"))
    return outputs


def _close(got: Any, want: Any) -> bool:
    """Equal JSON, numbers to float tolerance (batched kernels may round differently)."""
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_close(got[k], want[k]) for k in got)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(got, float) and isinstance(want, float):
        return abs(got - want) <= 1e-4 + 1e-4 * abs(want)
    return bool(got == want)


def test_concurrent_callers_get_their_own_answers_equal_to_alone(
    settings_factory: Callable[..., Settings],
) -> None:
    items = [item(n) for n in range(40)]
    alone = _alone(settings_factory(), items)

    async def go() -> tuple[list[Any], str]:
        settings = settings_factory(batch_max_size=8, batch_max_wait_ms=50, batching_enabled=True)
        async with serve(settings) as (_, client):
            responses = await asyncio.gather(
                *(client.post("/predict", json={"inputs": [value]}) for value in items)
            )
            metrics = (await client.get("/metrics")).text
        for response in responses:
            assert response.status_code == 200, response.text
        assert len({r.json()["request_id"] for r in responses}) == len(items)
        return [r.json()["outputs"][0] for r in responses], metrics

    batched, metrics = asyncio.run(go())
    for got, want in zip(batched, alone, strict=True):
        assert _close(got, want), (got, want)
    buckets = _batch_sizes(metrics)
    # Every forward pass held at most 8 items, and batching really happened.
    assert buckets["8.0"] == buckets["+Inf"]
    assert buckets["+Inf"] < len(items)


def test_multi_item_requests_are_split_back_correctly(
    settings_factory: Callable[..., Settings],
) -> None:
    items = [item(n) for n in range(30)]
    alone = _alone(settings_factory(), items)
    groups = [items[i : i + 3] for i in range(0, 30, 3)]

    async def go() -> list[Any]:
        settings = settings_factory(batch_max_size=8, batch_max_wait_ms=30, batching_enabled=True)
        async with serve(settings) as (_, client):
            responses = await asyncio.gather(
                *(client.post("/predict", json={"inputs": group}) for group in groups)
            )
        return [row for r in responses for row in r.json()["outputs"]]

    assert _close(asyncio.run(go()), alone)


def test_batching_off_runs_each_request_alone(settings_factory: Callable[..., Settings]) -> None:
    async def go() -> str:
        settings = settings_factory(batching_enabled=False)
        async with serve(settings) as (_, client):
            responses = await asyncio.gather(
                *(client.post("/predict", json={"inputs": [item(n)]}) for n in range(10))
            )
            assert all(r.status_code == 200 for r in responses)
            return (await client.get("/metrics")).text

    buckets = _batch_sizes(asyncio.run(go()))
    assert buckets["1.0"] == buckets["+Inf"] == 10


class _Slow:
    """A ``run`` that takes ``seconds`` per pass, doubles numbers and logs each pass.

    ``gate``, when given, holds every pass until it is set.
    """

    def __init__(self, seconds: float = 0.0, gate: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.gate = gate
        self.passes: list[list[int]] = []
        self.starts: list[float] = []
        self.ends: list[float] = []

    def __call__(self, items: list[Any]) -> list[Any]:
        self.starts.append(time.monotonic())
        self.passes.append(list(items))
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.seconds)
        self.ends.append(time.monotonic())
        return [2 * value for value in items]


def _runner(
    run: _Slow,
    max_size: int,
    max_wait_s: float,
    arrivals: Arrivals | None = None,
    queue_max: int = 100,
) -> InferenceRunner:
    return InferenceRunner(
        run,
        Metrics(),
        batching=True,
        max_size=max_size,
        max_wait_s=max_wait_s,
        queue_max=queue_max,
        arrivals=arrivals,
    )


def test_a_request_arriving_while_a_batch_collects_joins_it() -> None:
    run = _Slow()

    async def go() -> None:
        runner = _runner(run, max_size=100, max_wait_s=2.0)
        await runner.start()
        first = asyncio.create_task(runner.predict([1]))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(runner.predict([3, 4]))
        assert await asyncio.gather(first, second) == [[2], [6, 8]]
        await runner.stop()

    asyncio.run(go())
    # Without a count of arrivals the window is waited out; both went in one pass.
    assert run.passes == [[1, 3, 4]]


def test_requests_queued_behind_a_running_pass_do_not_wait_again() -> None:
    gate = threading.Event()
    run = _Slow(gate=gate)

    async def go() -> None:
        runner = _runner(run, max_size=100, max_wait_s=0.05)
        await runner.start()
        first = asyncio.create_task(runner.predict([1]))
        # The first pass has started, and the gate holds it.
        await wait_for(lambda: bool(run.passes))
        later = [asyncio.create_task(runner.predict([n])) for n in (2, 3, 4)]
        await asyncio.sleep(0.3)  # well past their window
        gate.set()
        assert await asyncio.gather(first, *later) == [[2], [4], [6], [8]]
        await runner.stop()

    asyncio.run(go())
    # The three that queued behind the running pass went together, right after it.
    assert run.passes == [[1], [2, 3, 4]]


def test_a_full_batch_starts_without_waiting_and_the_rest_follows() -> None:
    run = _Slow()

    async def go() -> None:
        runner = _runner(run, max_size=2, max_wait_s=30.0)
        await runner.start()
        async with asyncio.timeout(10):  # far less than the window
            outs = await asyncio.gather(*(runner.predict([n]) for n in range(4)))
        assert outs == [[0], [2], [4], [6]]
        await runner.stop()

    asyncio.run(go())
    assert run.passes == [[0, 1], [2, 3]]


def test_a_request_that_does_not_fit_runs_first_in_the_next_batch() -> None:
    run = _Slow()

    async def go() -> None:
        runner = _runner(run, max_size=4, max_wait_s=30.0)
        await runner.start()
        async with asyncio.timeout(10):
            outs = await asyncio.gather(
                runner.predict([1, 1]), runner.predict([2, 2, 2]), runner.predict([3])
            )
        assert outs == [[2, 2], [4, 4, 4], [6]]
        await runner.stop()

    asyncio.run(go())
    # [2, 2, 2] would overflow the first batch: it leads the next one, in arrival order.
    assert run.passes[0] == [1, 1]
    assert run.passes[1][:3] == [2, 2, 2]


def test_a_lone_request_does_not_wait_for_the_window() -> None:
    # The server handles one prediction and it is already queued: nobody else is on
    # the way, so its batch starts at once instead of after the 30 s window.
    run = _Slow()
    arrivals = Arrivals()

    async def go() -> None:
        runner = _runner(run, max_size=8, max_wait_s=30.0, arrivals=arrivals)
        await runner.start()
        async with asyncio.timeout(10):
            assert await runner.predict([1]) == [2]
        await runner.stop()

    asyncio.run(go())
    assert run.passes == [[1]]


def test_the_window_waits_for_a_request_still_on_its_way() -> None:
    # Two predictions are being handled but only one has reached the batcher: the
    # batch waits for the second and runs both together.
    run = _Slow()
    arrivals = Arrivals()

    async def go() -> None:
        runner = _runner(run, max_size=8, max_wait_s=30.0, arrivals=arrivals)
        await runner.start()
        second_state: dict[str, object] = {}
        arrivals.enter(second_state)
        first = asyncio.create_task(runner.predict([1]))
        await asyncio.sleep(0.2)
        assert not first.done(), "the batch closed while a request was still on its way"
        arrivals.leave(second_state)  # as the endpoint does just before queueing
        second = asyncio.create_task(runner.predict([3]))
        async with asyncio.timeout(10):
            assert await asyncio.gather(first, second) == [[2], [6]]
        await runner.stop()

    asyncio.run(go())
    assert run.passes == [[1, 3]]


def test_a_full_queue_is_refused() -> None:
    gate = threading.Event()
    run = _Slow(gate=gate)

    async def go() -> None:
        runner = _runner(run, max_size=1, max_wait_s=0.0, queue_max=1)
        await runner.start()
        running = asyncio.create_task(runner.predict([1]))
        await wait_for(lambda: bool(run.passes))  # the collector took it: the queue is empty again
        waiting = asyncio.create_task(runner.predict([2]))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError):
            await runner.predict([3])
        gate.set()
        assert await asyncio.gather(running, waiting) == [[2], [4]]
        await runner.stop()

    asyncio.run(go())


def test_stop_answers_every_caller_queued_or_running() -> None:
    # A pass is running (held by the gate) and more requests are queued behind it when
    # the service stops with a short timeout: each caller gets its rows or StoppedError,
    # none is left waiting.
    gate = threading.Event()
    run = _Slow(gate=gate)

    async def go() -> list[Any]:
        runner = _runner(run, max_size=2, max_wait_s=0.0)
        await runner.start()
        calls = [asyncio.create_task(runner.predict([n])) for n in range(6)]
        await wait_for(lambda: bool(run.passes))
        stopping = asyncio.create_task(runner.stop(timeout_s=0.2))
        await asyncio.sleep(0.5)  # the timeout has passed; the pass is still held
        async with asyncio.timeout(5):
            results = await asyncio.gather(*calls, return_exceptions=True)
        gate.set()  # let the worker thread finish, so stop() can shut it down
        await stopping
        return results

    results = asyncio.run(go())
    assert all(isinstance(r, StoppedError) for r in results), results


def test_stop_lets_queued_work_finish_within_the_timeout() -> None:
    run = _Slow(seconds=0.01)

    async def go() -> list[Any]:
        runner = _runner(run, max_size=2, max_wait_s=0.0)
        await runner.start()
        calls = [asyncio.create_task(runner.predict([n])) for n in range(6)]
        await asyncio.sleep(0)
        await runner.stop(timeout_s=30)
        results = await asyncio.gather(*calls, return_exceptions=True)
        with pytest.raises(StoppedError):
            await runner.predict([9])
        return results

    assert asyncio.run(go()) == [[0], [2], [4], [6], [8], [10]]


def test_every_request_is_counted_out_whatever_its_fate(
    settings_factory: Callable[..., Settings],
) -> None:
    # Answered, refused by validation, or refused for its size: none may stay counted as
    # "on its way", or every later batch would wait out its whole window.
    async def go() -> None:
        settings = settings_factory(batching_enabled=True, batch_max_wait_ms=1000)
        async with serve(settings) as (app, client):
            runtime = app.state.runtime
            bodies: list[Any] = [
                {"inputs": [item()]},
                {"inputs": []},
                {"inputs": "not a list"},
                {"inputs": [item()] * 1000},
            ]
            for body in bodies:
                await client.post("/predict", json=body)
                assert runtime.arrivals.count == 0, body
            await client.post("/predict", content=b"{", headers={"content-type": "text/plain"})
            assert runtime.arrivals.count == 0

    asyncio.run(go())
