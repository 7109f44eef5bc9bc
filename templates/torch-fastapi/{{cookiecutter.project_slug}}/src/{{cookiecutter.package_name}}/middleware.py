"""Request plumbing as plain ASGI middleware: request ids, body limit, metrics, access log.

Plain ASGI (not ``BaseHTTPMiddleware``) keeps the request id context variable visible
to the endpoint and adds no extra task per request.
Ref: https://www.starlette.io/middleware/#pure-asgi-middleware
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .batching import Arrivals
from .logs import request_id_var
from .metrics import Metrics

log = logging.getLogger(__name__ + ".access")

REQUEST_ID_HEADER = "x-request-id"
# Accept a caller's id only when it is short and plain, so it is safe in logs and the DB.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_PROBE_ROUTES = frozenset({"/health", "/ready", "/metrics"})


class _BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes HTTPExceptions through body parsing."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)


class RequestMiddleware:
    """Gives every request an id, refuses oversized bodies early, and measures it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        arrivals: Arrivals,
        access_log: str = "errors",
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.arrivals = arrivals
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 500
        started = False
        start = time.perf_counter()
        self.metrics.in_flight.inc()
        # Counted from the first byte, before the body is read: the batcher waits for
        # these requests only, until the endpoint queues them (see batching.Arrivals).
        state = scope["state"]
        if scope["method"] == "POST" and scope["path"] == "/predict":
            self.arrivals.enter(state)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                # Refused from the header alone: the body is never read.
                await self._refuse(send_wrapper, 413, self._too_large_message())
                return
            try:
                await self.app(scope, self._limited(receive), send_wrapper)
            except _BodyTooLarge:
                if started:
                    raise
                await self._refuse(send_wrapper, 413, self._too_large_message())
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.in_flight.dec()
            self.arrivals.leave(state)  # when the request never reached the batcher
            self.metrics.requests.labels(scope["method"], label, str(status)).inc()
            self.metrics.latency.labels(label).observe(elapsed)
            level = self._access_level(label, status)
            if level and log.isEnabledFor(level):
                log.log(
                    level,
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )
            request_id_var.reset(token)

    def _access_level(self, route: str, status: int) -> int:
        """The level of a request's access line (ACCESS_LOG); 0 means no line at all.

        ``errors`` (the default) writes INFO lines for 4xx and 5xx answers only: every
        prediction already has its row in the prediction log, with its request id,
        status and latency, and a line per request costs the process about a fifth of
        the CPU of a small model's prediction, plus the container runtime's work to
        ship it. ``all`` adds every other request except successful probes and scrapes,
        which arrive every few seconds. Lines not at INFO are written at DEBUG.
        """
        if self.access_log == "off":
            return 0
        if status >= 400:
            return logging.INFO
        if self.access_log == "all" and route not in _PROBE_ROUTES:
            return logging.INFO
        return logging.DEBUG

    def _too_large_message(self) -> str:
        return f"request body too large: at most {self.max_body_bytes} bytes"

    def _limited(self, receive: Receive) -> Receive:
        """Count body bytes as they arrive (bodies sent without Content-Length)."""
        received = 0

        async def wrapped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge(self._too_large_message())
            return message

        return wrapped

    @staticmethod
    async def _refuse(send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
