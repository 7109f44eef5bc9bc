"""A steady ``POST /predict`` load on loopback, and an account of every request it sent.

The drills keep a few clients busy while they break something underneath the service
(the database, say), then check that every prediction was still answered. Each client
is a thread that sends the project's sample request, notes what came back, pauses a
little and sends again until the load is stopped, so the rate stays modest and the
queue of the prediction log never overflows on a small machine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from generator.harness import loopback

#: Sends one request: (url, body, timeout) -> (status, body); raises loopback.NoAnswer.
Send = Callable[[str, bytes, float], tuple[int, bytes]]


def _send(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    return loopback.request(url, body, timeout=timeout)


@dataclass(frozen=True)
class Sent:
    """One request of the load: when it left, how long it took, and what came back."""

    started: float  # time.monotonic() when it was sent
    seconds: float
    status: int | None  # None: nothing answered
    request_id: str | None
    error: str = ""  # why it failed, empty for a 200 with a request id

    @property
    def ok(self) -> bool:
        """True for a 200 that carried a request id."""
        return not self.error


def account(started: float, seconds: float, status: int | None, body: bytes) -> Sent:
    """Judge one answer: a 200 with a JSON ``request_id`` is a success, anything else not."""
    if status is None:
        return Sent(started, seconds, None, None, "no answer")
    if status != 200:
        return Sent(started, seconds, status, None, f"status {status}")
    try:
        answer = json.loads(body)
    except ValueError:
        return Sent(started, seconds, status, None, "a 200 that is not JSON")
    request_id = answer.get("request_id") if isinstance(answer, dict) else None
    if not isinstance(request_id, str) or not request_id:
        return Sent(started, seconds, status, None, "a 200 without a request_id")
    return Sent(started, seconds, status, request_id)


@dataclass(frozen=True)
class LoadResult:
    """Every request a load sent, in the order they finished."""

    sent: tuple[Sent, ...]
    seconds: float

    @property
    def failed(self) -> tuple[Sent, ...]:
        """The requests that did not get a 200 with a request id."""
        return tuple(s for s in self.sent if not s.ok)

    def ids_sent_after(self, moment: float) -> list[str]:
        """Request ids of the successful requests sent at or after ``moment`` (monotonic)."""
        return [s.request_id for s in self.sent if s.request_id and s.started >= moment]

    def figures(self) -> dict[str, object]:
        """Return requests, failures, rate and the slowest answer, for the report."""
        slowest = max((s.seconds for s in self.sent), default=0.0)
        rate = len(self.sent) / self.seconds if self.seconds > 0 else 0.0
        return {
            "requests": len(self.sent),
            "failed": len(self.failed),
            "requests_per_second": round(rate, 1),
            "slowest_ms": round(slowest * 1000, 1),
        }

    def failure_summary(self) -> str:
        """One line: how many failed, and the first reason."""
        failed = self.failed
        if not failed:
            return "no request failed"
        total = len(self.sent)
        return f"{len(failed)} of {total} /predict requests failed (first: {failed[0].error})"


class Load:
    """``clients`` threads posting ``body`` to ``url`` until :meth:`stop`; a context manager.

    Leaving the ``with`` block stops the load (also on an exception or an interrupt),
    so no client outlives the step that started it.
    """

    def __init__(
        self,
        url: str,
        body: bytes,
        clients: int = 4,
        pause: float = 0.05,
        timeout: float = 10.0,
        send: Send = _send,
    ) -> None:
        self.url = url
        self.body = body
        self.clients = clients
        self.pause = pause
        self.timeout = timeout
        self._send = send
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent: list[Sent] = []
        self._threads: list[threading.Thread] = []
        self._began = 0.0
        self._result: LoadResult | None = None

    def start(self) -> Load:
        """Start the clients (once)."""
        if self._threads:
            return self
        self._began = time.monotonic()
        for index in range(self.clients):
            # Daemon threads: a client stuck in a request never keeps the harness alive.
            thread = threading.Thread(target=self._client, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def snapshot(self) -> LoadResult:
        """Return what has been sent so far (the load keeps going)."""
        with self._lock:
            sent = tuple(self._sent)
        return LoadResult(sent, time.monotonic() - self._began)

    def stop(self) -> LoadResult:
        """Stop the clients, wait for their last requests, and return the account."""
        if self._result is None:
            self._stop.set()
            for thread in self._threads:
                thread.join(self.timeout + 1.0)
            self._result = self.snapshot()
        return self._result

    def _client(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                status, body = self._send(self.url, self.body, self.timeout)
            except loopback.NoAnswer:
                status, body = None, b""
            sent = account(began, time.monotonic() - began, status, body)
            with self._lock:
                self._sent.append(sent)
            self._stop.wait(self.pause)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
