"""Micro-batching: same answers as alone, bounded batches, one answer per caller."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import torch

from conftest import serve
from {{ cookiecutter.package_name }}.batching import Arrivals, InferenceRunner
from {{ cookiecutter.package_name }}.metrics import Metrics
from {{ cookiecutter.package_name }}.model import load_model
from {{ cookiecutter.package_name }}.settings import Settings


def _items(n: int) -> list[list[float]]:
    """Distinct, reproducible items (item i differs from every other)."""
    gen = torch.Generator().manual_seed(1234)
    return torch.randn(n, 4, generator=gen).tolist()


def _batch_sizes(metrics_text: str) -> dict[str, float]:
    pattern = re.compile(r'^inference_batch_size_bucket\{le="([^"]+)"\} (\S+)$', re.M)
    return {le: float(v) for le, v in pattern.findall(metrics_text)}


def test_concurrent_callers_get_their_own_answers_equal_to_alone(
    settings_factory: Callable[..., Settings],
) -> None:
    items = _items(60)
    model = load_model(settings_factory())
    alone = [model.forward(torch.tensor([item])).tolist()[0] for item in items]

    async def go() -> tuple[list[list[float]], str]:
        settings = settings_factory(batch_max_size=8, batch_max_wait_ms=50, batching_enabled=True)
        async with serve(settings) as (_, client):
            responses = await asyncio.gather(
                *(client.post("/predict", json={"inputs": [item]}) for item in items)
            )
            metrics = (await client.get("/metrics")).text
        for response in responses:
            assert response.status_code == 200, response.text
        ids = {r.json()["request_id"] for r in responses}
        assert len(ids) == len(items)
        return [r.json()["outputs"][0] for r in responses], metrics

    batched, metrics = asyncio.run(go())
    for got, want in zip(batched, alone, strict=True):
        assert torch.allclose(torch.tensor(got), torch.tensor(want), atol=1e-5), (got, want)
    buckets = _batch_sizes(metrics)
    total = buckets["+Inf"]
    # Every forward pass held at most 8 items, and batching really happened.
    assert buckets["8.0"] == total
    assert total < len(items)


def test_multi_item_requests_are_split_back_correctly(
    settings_factory: Callable[..., Settings],
) -> None:
    items = _items(30)
    model = load_model(settings_factory())
    want = model.forward(torch.tensor(items)).tolist()
    groups = [items[i : i + 3] for i in range(0, 30, 3)]

    async def go() -> list[list[list[float]]]:
        settings = settings_factory(batch_max_size=8, batch_max_wait_ms=30, batching_enabled=True)
        async with serve(settings) as (_, client):
            responses = await asyncio.gather(
                *(client.post("/predict", json={"inputs": group}) for group in groups)
            )
        return [r.json()["outputs"] for r in responses]

    got = [row for rows in asyncio.run(go()) for row in rows]
    assert torch.allclose(torch.tensor(got), torch.tensor(want), atol=1e-5)


def test_batching_off_runs_each_request_alone(settings_factory: Callable[..., Settings]) -> None:
    async def go() -> str:
        settings = settings_factory(batching_enabled=False)
        async with serve(settings) as (_, client):
            responses = await asyncio.gather(
                *(client.post("/predict", json={"inputs": [item]}) for item in _items(10))
            )
            assert all(r.status_code == 200 for r in responses)
            return (await client.get("/metrics")).text

    buckets = _batch_sizes(asyncio.run(go()))
    assert buckets["1.0"] == buckets["+Inf"] == 10


class _SlowDouble:
    """A forward pass that takes ``seconds`` and records when each pass starts and ends."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.sizes: list[int] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.starts.append(time.monotonic())
        self.sizes.append(int(batch.shape[0]))
        time.sleep(self.seconds)
        self.ends.append(time.monotonic())
        return batch * 2


def _runner(
    forward: _SlowDouble, max_size: int, max_wait_s: float, arrivals: Arrivals | None = None
) -> InferenceRunner:
    return InferenceRunner(
        forward,
        Metrics(),
        batching=True,
        max_size=max_size,
        max_wait_s=max_wait_s,
        queue_max=100,
        arrivals=arrivals,
    )


def test_wait_is_bounded_by_max_wait_plus_the_running_pass() -> None:
    forward = _SlowDouble(0.5)

    async def go() -> float:
        runner = _runner(forward, max_size=100, max_wait_s=0.3)
        await runner.start()
        t0 = time.monotonic()
        first = asyncio.create_task(runner.predict(torch.ones(1, 4)))
        await asyncio.sleep(0.1)
        # Arrives while the first batch is still collecting; lands in it, or (if it
        # closed) in the next batch, which must start as soon as the pass ends.
        second = asyncio.create_task(runner.predict(torch.full((1, 4), 3.0)))
        await asyncio.sleep(0.35)
        third = asyncio.create_task(runner.predict(torch.full((1, 4), 5.0)))
        outs = await asyncio.gather(first, second, third)
        await runner.stop()
        assert [o.tolist() for o in outs] == [[[2.0] * 4], [[6.0] * 4], [[10.0] * 4]]
        return t0

    t0 = asyncio.run(go())
    # The first batch waited for its window (0.3 s), not for more: it was not full.
    assert 0.25 <= forward.starts[0] - t0 < 0.7
    assert forward.sizes[0] == 2
    # The third request queued behind a running pass: its window had already passed,
    # so its batch started right when that pass ended instead of waiting again (a
    # window counted from the pick-up would make this gap 0.3 s).
    assert forward.starts[1] - forward.ends[0] < 0.2


def test_a_full_batch_starts_without_waiting() -> None:
    forward = _SlowDouble(0.0)

    async def go() -> float:
        runner = _runner(forward, max_size=2, max_wait_s=2.0)
        await runner.start()
        t0 = time.monotonic()
        await asyncio.gather(runner.predict(torch.ones(1, 4)), runner.predict(torch.ones(1, 4)))
        await runner.stop()
        return t0

    t0 = asyncio.run(go())
    assert forward.sizes == [2]
    assert forward.starts[0] - t0 < 1.0


def test_a_lone_request_does_not_wait_for_the_window() -> None:
    # The server handles one prediction and it is already queued: nobody else is on
    # the way, so its batch starts at once instead of after the 10 s window.
    forward = _SlowDouble(0.0)
    arrivals = Arrivals()

    async def go() -> None:
        runner = _runner(forward, max_size=8, max_wait_s=10.0, arrivals=arrivals)
        await runner.start()
        assert arrivals.count == 0
        async with asyncio.timeout(5):
            out = await runner.predict(torch.ones(1, 4))
        await runner.stop()
        assert out.tolist() == [[2.0] * 4]

    asyncio.run(go())
    assert forward.sizes == [1]


def test_the_window_waits_for_a_request_still_on_its_way() -> None:
    # Two predictions are being handled but only one has reached the batcher: the
    # batch waits for the second (which arrives well inside the window) and runs both.
    forward = _SlowDouble(0.0)
    arrivals = Arrivals()

    async def go() -> None:
        runner = _runner(forward, max_size=8, max_wait_s=10.0, arrivals=arrivals)
        await runner.start()
        second_state: dict[str, object] = {}
        arrivals.enter(second_state)
        first = asyncio.create_task(runner.predict(torch.ones(1, 4)))
        await asyncio.sleep(0.2)
        assert not first.done(), "the batch closed while a request was still on its way"
        arrivals.leave(second_state)  # as the endpoint does just before queueing
        second = asyncio.create_task(runner.predict(torch.full((1, 4), 3.0)))
        async with asyncio.timeout(5):
            outs = await asyncio.gather(first, second)
        await runner.stop()
        assert [o.tolist() for o in outs] == [[[2.0] * 4], [[6.0] * 4]]

    asyncio.run(go())
    assert forward.sizes == [2]


def test_a_full_queue_is_refused() -> None:
    from {{ cookiecutter.package_name }}.batching import OverloadedError

    forward = _SlowDouble(0.3)

    async def go() -> None:
        runner = InferenceRunner(
            forward, Metrics(), batching=True, max_size=1, max_wait_s=0.0, queue_max=1
        )
        await runner.start()
        running = asyncio.create_task(runner.predict(torch.ones(1, 4)))
        await asyncio.sleep(0.05)  # the collector took it: the queue is empty again
        waiting = asyncio.create_task(runner.predict(torch.ones(1, 4)))
        await asyncio.sleep(0)
        try:
            await runner.predict(torch.ones(1, 4))
        except OverloadedError:
            pass
        else:
            raise AssertionError("a third request was queued beyond BATCH_QUEUE_MAX")
        await asyncio.gather(running, waiting)
        await runner.stop()

    asyncio.run(go())


def test_every_request_is_counted_out_whatever_its_fate(
    settings_factory: Callable[..., Settings],
) -> None:
    # Answered, refused by validation, or refused for its size: none may stay counted as
    # "on its way", or every later batch would wait out its whole window.
    async def go() -> None:
        settings = settings_factory(batching_enabled=True, batch_max_wait_ms=1000)
        async with serve(settings) as (app, client):
            runtime = app.state.runtime
            bodies = [
                {"inputs": [[1, 2, 3, 4]]},
                {"inputs": [[1, 2]]},
                {"inputs": "not a list"},
                {"inputs": [[0, 0, 0, 0]] * 1000},
            ]
            for body in bodies:
                await client.post("/predict", json=body)
                assert runtime.arrivals.count == 0, body
            # A lone request after all that does not wait out the 1 s window.
            started = time.monotonic()
            response = await client.post("/predict", json={"inputs": [[1, 2, 3, 4]]})
            assert response.status_code == 200
            assert time.monotonic() - started < 0.8

    asyncio.run(go())
