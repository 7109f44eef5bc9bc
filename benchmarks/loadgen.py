"""An HTTP/1.1 load generator for loopback benchmarks: closed loop, or a fixed rate.

Closed loop (the default): each of N clients holds one keep-alive connection and sends
its next request as soon as the previous answer is read, so N is the number of requests
in flight. Fixed rate (``--rate R``, an open loop): request i is due at ``start + i/R``
whatever the answers' speed; up to N keep-alive connections send the due requests, and
a request's latency is measured from the time it was due, not from when a connection
was free to send it, so a slow server is not hidden by the generator slowing down with
it (no coordinated omission). The run reports the rate achieved and any shortfall.
It uses only asyncio streams and hand-written HTTP/1.1, so it adds no dependency and
costs little CPU per request. It runs in its own process (``python -m benchmarks.loadgen``,
or :func:`benchmarks.serving.run_load`) so that it never shares an event loop or a GIL
with the server.

Bounds: traffic goes to loopback only; the run stops at ``--max-requests`` measured
requests or after ``--warmup`` + ``--duration`` seconds, whichever comes first, and each
request has its own timeout. Output: one JSON object on standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: make the sibling module importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stats import percentile

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class LoadError(Exception):
    """A load run could not be set up or did not produce a result."""


@dataclass
class _State:
    """Counters shared by the client coroutines of one run (one event loop, no locks)."""

    warm_end: float
    stop_at: float
    max_requests: int
    measured_started: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    last_done: float = 0.0
    error_samples: list[str] = field(default_factory=list)


def build_request(method: str, host: str, port: int, path: str, body: bytes) -> bytes:
    """Return the raw bytes of one keep-alive HTTP/1.1 request."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: keep-alive",
        "Accept: application/json",
    ]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """Read one HTTP/1.1 response; return (status, keep_alive, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    header_lines = head.decode("latin-1").split("\r\n")
    parts = header_lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise LoadError(f"not an HTTP/1.x status line: {header_lines[0]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in header_lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    # HTTP/1.1 keeps the connection open unless told otherwise; HTTP/1.0 closes it unless
    # told otherwise. Ref: RFC 9112, section 9.3.
    keep_alive = connection == "keep-alive" if parts[0] == "HTTP/1.0" else connection != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # Trailers (rare) end with an empty line, like the headers.
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, keep_alive, b"".join(chunks)
    if "content-length" not in headers and not keep_alive:
        return status, keep_alive, await reader.read()  # the body ends at end of stream
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return status, keep_alive, body


async def _client(host: str, port: int, request: bytes, state: _State, timeout: float) -> None:
    """One closed-loop client: send, read, repeat until the run's bounds are reached."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while True:
            now = time.perf_counter()
            if now >= state.stop_at:
                return
            measured = now >= state.warm_end
            if measured:
                if state.measured_started >= state.max_requests:
                    return
                state.measured_started += 1
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), timeout
                    )
                assert reader is not None and writer is not None
                t0 = time.perf_counter()
                writer.write(request)
                await writer.drain()
                status, keep_alive, _ = await asyncio.wait_for(read_response(reader), timeout)
                t1 = time.perf_counter()
            except (
                OSError,
                ValueError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                LoadError,
            ) as exc:
                if measured:
                    state.errors += 1
                    if len(state.error_samples) < 3:
                        state.error_samples.append(f"{exc.__class__.__name__}: {exc}")
                if writer is not None:
                    writer.close()
                writer = reader = None
                # Back off briefly so a dead server does not turn into a busy loop.
                await asyncio.sleep(0.01)
                continue
            if measured:
                state.latencies.append(t1 - t0)
                key = str(status)
                state.statuses[key] = state.statuses.get(key, 0) + 1
                state.last_done = max(state.last_done, t1)
            if not keep_alive and writer is not None:
                writer.close()
                writer = reader = None
    finally:
        if writer is not None:
            writer.close()


async def run(
    url: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    concurrency: int = 1,
    max_requests: int = 10_000,
    duration: float = 5.0,
    warmup: float = 0.5,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Run one closed-loop load test and return its figures as a JSON-ready dict."""
    host, port, path = _target(url)
    if concurrency < 1 or max_requests < 1 or duration <= 0 or warmup < 0:
        raise LoadError("concurrency, max-requests and duration must be positive")
    request = build_request(method, host, port, path, body)
    start = time.perf_counter()
    state = _State(
        warm_end=start + warmup, stop_at=start + warmup + duration, max_requests=max_requests
    )
    await asyncio.gather(
        *(_client(host, port, request, state, timeout) for _ in range(concurrency))
    )
    return {"concurrency": concurrency, **_summary(url, method, state, state.warm_end)}


async def _rate_worker(
    host: str,
    port: int,
    request: bytes,
    due: asyncio.Queue[float | None],
    state: _State,
    timeout: float,
) -> None:
    """One connection of a fixed-rate run: send each due request it takes, in turn."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while (scheduled := await due.get()) is not None:
            measured = scheduled >= state.warm_end
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), timeout
                    )
                assert reader is not None and writer is not None
                writer.write(request)
                await writer.drain()
                status, keep_alive, _ = await asyncio.wait_for(read_response(reader), timeout)
                done = time.perf_counter()
            except (
                OSError,
                ValueError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                LoadError,
            ) as exc:
                if measured:
                    state.errors += 1
                    if len(state.error_samples) < 3:
                        state.error_samples.append(f"{exc.__class__.__name__}: {exc}")
                if writer is not None:
                    writer.close()
                writer = reader = None
                continue
            if measured:
                state.latencies.append(done - scheduled)
                key = str(status)
                state.statuses[key] = state.statuses.get(key, 0) + 1
                state.last_done = max(state.last_done, done)
            if not keep_alive and writer is not None:
                writer.close()
                writer = reader = None
    finally:
        if writer is not None:
            writer.close()


async def run_fixed_rate(
    url: str,
    *,
    rate: float,
    method: str = "GET",
    body: bytes = b"",
    connections: int = 64,
    duration: float = 5.0,
    warmup: float = 0.5,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Offer ``rate`` requests per second for ``warmup + duration`` seconds (an open loop).

    A request due while every connection is busy waits for one, and that wait counts in
    its latency. After the schedule ends, requests still waiting for a connection are
    not sent: they are counted as ``unsent`` (the shortfall of the offered rate).
    """
    host, port, path = _target(url)
    if rate <= 0 or connections < 1 or duration <= 0 or warmup < 0:
        raise LoadError("rate, connections and duration must be positive")
    request = build_request(method, host, port, path, body)
    start = time.perf_counter()
    state = _State(warm_end=start + warmup, stop_at=start + warmup + duration, max_requests=0)
    due: asyncio.Queue[float | None] = asyncio.Queue()
    workers = [
        asyncio.create_task(_rate_worker(host, port, request, due, state, timeout))
        for _ in range(connections)
    ]
    total = int((warmup + duration) * rate)
    offered = 0
    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        due.put_nowait(scheduled)
        if scheduled >= state.warm_end:
            offered += 1
    # The schedule is over: what no connection took by now is the shortfall (a pass of
    # the event loop first, so an idle connection takes the request due last).
    await asyncio.sleep(0)
    unsent = 0
    while not due.empty():
        due.get_nowait()
        unsent += 1
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    result = _summary(url, method, state, start + warmup)
    achieved = result["ok"] / duration
    result.update(
        mode="fixed-rate",
        offered_rps=offered / duration,
        achieved_rps=achieved,
        unsent=unsent,
        connections=connections,
        shortfall=max(0.0, 1.0 - achieved / (offered / duration)) if offered else 0.0,
    )
    return result


def _target(url: str) -> tuple[str, int, str]:
    """Host, port and path of a loopback URL, or LoadError."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or host not in LOOPBACK_HOSTS or parts.port is None:
        raise LoadError(f"only http://127.0.0.1:PORT/... URLs are allowed, got {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, parts.port, path


def _summary(url: str, method: str, state: _State, measured_from: float) -> dict[str, Any]:
    """The figures every mode reports, from the run's counters."""
    elapsed = max(state.last_done - measured_from, 1e-9) if state.latencies else 0.0
    ok = sum(n for code, n in state.statuses.items() if code.startswith("2"))
    lat_ms = [x * 1000 for x in state.latencies]
    return {
        "url": url,
        "method": method,
        "requests": len(state.latencies),
        "ok": ok,
        "errors": state.errors,
        "status": state.statuses,
        "error_samples": state.error_samples,
        "elapsed_s": elapsed,
        "throughput_rps": (ok / elapsed) if elapsed else 0.0,
        "p50_ms": percentile(lat_ms, 50) if lat_ms else None,
        "p99_ms": percentile(lat_ms, 99) if lat_ms else None,
        "mean_ms": statistics.fmean(lat_ms) if lat_ms else None,
        "max_ms": max(lat_ms) if lat_ms else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run one load test and print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    parser.add_argument("url", help="http://127.0.0.1:PORT/path (loopback only)")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body-file", type=Path, help="request body (JSON) to send")
    parser.add_argument("--body-stdin", action="store_true", help="read the body from stdin")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-requests", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--cpus", help="pin this process to these CPUs, e.g. 1 or 1,2")
    parser.add_argument(
        "--rate",
        type=float,
        help="fixed-rate mode: offer this many requests per second (up to --concurrency "
        "connections), latency measured from each request's due time",
    )
    args = parser.parse_args(argv)
    try:
        if args.cpus:
            os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
        if args.body_stdin:
            body = sys.stdin.buffer.read()
        elif args.body_file:
            body = args.body_file.read_bytes()
        else:
            body = b""
        if args.rate is not None:
            result = asyncio.run(
                run_fixed_rate(
                    args.url,
                    rate=args.rate,
                    method=args.method.upper(),
                    body=body,
                    connections=args.concurrency,
                    duration=args.duration,
                    warmup=args.warmup,
                    timeout=args.timeout,
                )
            )
        else:
            result = asyncio.run(
                run(
                    args.url,
                    method=args.method.upper(),
                    body=body,
                    concurrency=args.concurrency,
                    max_requests=args.max_requests,
                    duration=args.duration,
                    warmup=args.warmup,
                    timeout=args.timeout,
                )
            )
    except (LoadError, OSError, ValueError) as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
