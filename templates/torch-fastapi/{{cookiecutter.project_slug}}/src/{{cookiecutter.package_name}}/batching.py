"""Running forward passes off the event loop, with optional dynamic micro-batching.

All forward passes run on one dedicated worker thread, so the event loop never blocks
and torch's own intra-op threads are not oversubscribed by concurrent calls. With
batching on, concurrent requests are gathered into one forward pass: a batch closes
when it holds ``max_size`` items or when its oldest request has waited ``max_wait``
seconds, whichever comes first. A request therefore waits at most ``max_wait`` for its
batch to start, plus the forward pass already running when it arrived.

The window is only spent when it can pay off: given a count of the prediction
requests still on their way to the queue (``arrivals``: being read and validated), the
collector stops waiting as soon as that count is zero, so a lone caller is never
delayed by the window, while under load the requests still being read join the batch.
Without that count the collector always waits out the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from .metrics import Metrics

log = logging.getLogger(__name__)

Forward = Callable[[torch.Tensor], torch.Tensor]


class OverloadedError(RuntimeError):
    """Too many requests are waiting; the caller should answer 503."""


class StoppedError(RuntimeError):
    """The runner is shutting down and takes no more work."""


@dataclass
class _Pending:
    batch: torch.Tensor
    future: asyncio.Future[torch.Tensor]
    enqueued: float
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = int(self.batch.shape[0])


class Arrivals:
    """How many prediction requests are on their way to the batch queue.

    The HTTP middleware counts a request in at its first byte, before its body is read
    and validated, and the endpoint counts it out just before handing its batch to the
    runner (or the middleware does, when the request ends without reaching it). The
    batch collector keeps a batch open only while this count says someone is coming.
    Requests that already have their answer are not counted: a batch never waits for
    a caller who is only sending its response.
    """

    _KEY = "batching.arrival"

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        """The current count."""
        return self.count

    def enter(self, state: dict[str, object]) -> None:
        """Count a request in; ``state`` is its ASGI scope's state."""
        self.count += 1
        state[self._KEY] = True

    def leave(self, state: dict[str, object]) -> None:
        """Count a request out (once; later calls do nothing)."""
        if state.pop(self._KEY, False):
            self.count -= 1


class InferenceRunner:
    """Runs a model's forward pass on one worker thread, batching when enabled."""

    def __init__(
        self,
        forward: Forward,
        metrics: Metrics,
        *,
        batching: bool,
        max_size: int,
        max_wait_s: float,
        queue_max: int,
        arrivals: Callable[[], int] | None = None,
    ) -> None:
        self._forward = forward
        self._arrivals = arrivals
        self._metrics = metrics
        self.batching = batching
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_max)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Start the batch collector (no-op without batching)."""
        if self.batching and self._task is None:
            self._task = asyncio.create_task(self._collect(), name="micro-batcher")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish queued work (up to ``timeout_s``), then refuse new work."""
        self._stopping = True
        if self._task is not None:
            deadline = time.monotonic() + timeout_s
            # Polling: asyncio.Queue has no "became empty" event without task_done().
            while not self._queue.empty() and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            while not self._queue.empty():
                pending = self._queue.get_nowait()
                if not pending.future.done():
                    pending.future.set_exception(StoppedError("the service is shutting down"))
        self._executor.shutdown(wait=True)

    async def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Outputs for ``batch`` (first dimension = items), computed off the event loop."""
        if self._stopping:
            raise StoppedError("the service is shutting down")
        loop = asyncio.get_running_loop()
        if not self.batching:
            return await loop.run_in_executor(self._executor, self._timed_forward, batch)
        if self._task is None or self._task.done():
            raise StoppedError("the batch collector is not running")
        pending = _Pending(batch, loop.create_future(), loop.time())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._metrics.batch_queue_rejections.inc()
            raise OverloadedError(f"{self._queue.maxsize} requests are already waiting") from None
        return await pending.future

    def _more_coming(self) -> bool:
        """Whether a request the server is handling has yet to reach the queue."""
        return self._arrivals is None or self._arrivals() > 0

    def _timed_forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The forward pass with its metrics; runs on the worker thread."""
        self._metrics.batch_size.observe(int(batch.shape[0]))
        start = time.perf_counter()
        try:
            out = self._forward(batch)
        except Exception:
            self._metrics.inference_errors.inc()
            raise
        finally:
            self._metrics.inference_seconds.observe(time.perf_counter() - start)
        if out.shape[0] != batch.shape[0]:
            self._metrics.inference_errors.inc()
            raise RuntimeError(
                f"the model returned {out.shape[0]} rows for a batch of {batch.shape[0]}"
            )
        return out

    async def _collect(self) -> None:
        """Gather requests into batches and run them, forever."""
        loop = asyncio.get_running_loop()
        carry: _Pending | None = None
        while True:
            first = carry if carry is not None else await self._queue.get()
            carry = None
            if first.future.done():  # the caller went away while waiting
                continue
            group = [first]
            size = first.size
            # The window is measured from the oldest request's arrival, so requests
            # that queued up behind a running forward pass do not wait again.
            deadline = first.enqueued + self.max_wait_s
            while size < self.max_size:
                try:
                    # What is queued already joins at once.
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0 or not self._more_coming():
                        break
                    try:
                        async with asyncio.timeout(remaining):
                            nxt = await self._queue.get()
                    except TimeoutError:
                        break
                if nxt.future.done():
                    continue
                if size + nxt.size > self.max_size:
                    carry = nxt
                    break
                group.append(nxt)
                size += nxt.size
            await self._run_group(group)

    async def _run_group(self, group: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        batch = group[0].batch if len(group) == 1 else torch.cat([p.batch for p in group])
        try:
            out = await loop.run_in_executor(self._executor, self._timed_forward, batch)
        except Exception as exc:
            log.warning("forward pass failed", extra={"error": repr(exc), "items": len(batch)})
            if len(group) == 1:
                if not group[0].future.done():
                    group[0].future.set_exception(exc)
                return
            # One bad request must not fail the others that shared its batch: run each
            # alone, so only the requests that fail by themselves get the error.
            for pending in group:
                await self._run_group([pending])
            return
        offset = 0
        for pending in group:
            if not pending.future.done():
                pending.future.set_result(out[offset : offset + pending.size])
            offset += pending.size
