"""Limits in front of the model, on the real process: request heads, reading times, connections.

Each test speaks raw HTTP/1.1 over a socket to the service (``python -m`` of the
package), started once with small limits. A time limit is checked only as "cut off
before CUT_OFF_WITHIN seconds", several times the setting, so that a loaded machine
does not fail it; a connection left open is never waited on for longer than that.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PACKAGE, PROJECT_DIR, item

MAX_HEAD_BYTES = 4096
MAX_HEADERS = 20
HEAD_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2
#: Longer than uvicorn's own default (5 s): the test tells the two apart.
KEEP_ALIVE_S = 8
MAX_CONNECTIONS = 4
CUT_OFF_WITHIN = 15.0


@pytest.fixture(scope="module")
def service(
    demo_model: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Path]]:
    """The port and the log file of a running service with the small limits above."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = int(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "MODEL_", "PORT"))}
    env.update(
        PYTHONPATH=str(PROJECT_DIR / "src"),
        HOST="127.0.0.1",
        PORT=str(free),
        MODEL_PATH=str(demo_model[0]),
        MODEL_SHA256=demo_model[1],
        DB_ENABLED="false",
        DEVICE="cpu",
        TORCH_THREADS="1",
        MAX_HEAD_BYTES=str(MAX_HEAD_BYTES),
        MAX_HEADERS=str(MAX_HEADERS),
        HEAD_TIMEOUT_S=str(HEAD_TIMEOUT_S),
        BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        KEEP_ALIVE_S=str(KEEP_ALIVE_S),
        MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    )
    log = tmp_path_factory.mktemp("limits") / "service.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", PACKAGE],
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{free}/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.2)
        yield free, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def port(service: tuple[int, Path]) -> int:
    """The port of the running service."""
    return service[0]


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=CUT_OFF_WITHIN)


def _send(sock: socket.socket, data: bytes) -> None:
    """Send what the server takes: it may close the connection halfway through."""
    with contextlib.suppress(OSError):
        sock.sendall(data)


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and after how many seconds.

    Fails when the connection is still open after CUT_OFF_WITHIN seconds. A reset counts
    as closed: the server closes with the client's unread bytes in its buffer.
    """
    start = time.monotonic()
    data = b""
    while True:
        remaining = start + CUT_OFF_WITHIN - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"still open after {CUT_OFF_WITHIN} s; received {data[:200]!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - start


def _status(data: bytes) -> int:
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data.split(b" ", 2)[1])


def _response(reader: io.BufferedReader) -> tuple[int, bytes]:
    """The next response (with a Content-Length) on a connection that stays open.

    ``reader`` is the connection's ``makefile("rb")``, one per connection: it keeps
    the bytes of a pipelined next response for the next call.
    """
    status_line = reader.readline()
    assert status_line, "closed before an answer"
    length = None
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    assert length is not None, status_line
    body = reader.read(length)
    assert len(body) == length, "closed in the middle of a body"
    return _status(status_line), body


def _get(path: str = "/health", extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n"


def _predict(body: bytes) -> bytes:
    return (
        b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


def test_normal_requests_still_work(port: int) -> None:
    body = json.dumps({"inputs": [item(1), item(2)]}).encode()
    # A body far larger than MAX_HEAD_BYTES in the same write as its head, and padded
    # heads just within the limits, on one keep-alive connection.
    big_body = body[:-1] + b" " * 200_000 + b"}"
    pad = MAX_HEAD_BYTES - len(_get(extra=b"X-Pad: \r\n"))
    at_limit = _get(extra=b"X-Pad: " + b"p" * pad + b"\r\n")
    assert len(at_limit) == MAX_HEAD_BYTES
    all_headers = _get(extra=b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS - 1)))
    with _connect(port) as sock, sock.makefile("rb") as reader:
        for request in (_get(), _predict(body), _predict(big_body), at_limit, all_headers):
            sock.sendall(request)
            status, answer = _response(reader)
            assert status == 200, answer
        # Two requests in one write (pipelined), and one sent a few bytes at a time.
        sock.sendall(_get() + _predict(body))
        assert _response(reader)[0] == 200
        status, answer = _response(reader)
        assert status == 200
        assert len(json.loads(answer)["outputs"]) == 2
        request = _predict(body)
        for start in range(0, len(request), 7):
            sock.sendall(request[start : start + 7])
        assert _response(reader)[0] == 200


@pytest.mark.parametrize(
    "request_bytes",
    [
        _get(extra=b"X-Big: " + b"a" * 1_048_576 + b"\r\n"),
        # A head that never ends: refused once it passes the limit, not when it ends.
        _get(extra=b"X-Big: " + b"a" * (4 * MAX_HEAD_BYTES))[:-2],
        # A request line longer than the limit.
        _get(path="/" + "a" * (2 * MAX_HEAD_BYTES)),
    ],
    ids=["1MB-header", "unfinished-head", "long-request-line"],
)
def test_a_head_over_the_limit_is_431_and_closed(port: int, request_bytes: bytes) -> None:
    with _connect(port) as sock:
        _send(sock, request_bytes)
        data, _ = _until_closed(sock)
    assert _status(data) == 431
    assert b"connection: close" in data.lower()
    assert b"request head too large: at most 4096 bytes" in data


def test_a_pipelined_head_over_the_limit_ends_the_connection_after_the_answer(
    port: int,
) -> None:
    # The request before it is answered; then the connection is closed, even while the
    # client goes on sending the oversize head a byte at a time.
    start = time.monotonic()
    data = b""
    with _connect(port) as sock:
        _send(sock, _get() + _get(extra=b"X-Big: " + b"a" * (4 * MAX_HEAD_BYTES))[:-2])
        sock.settimeout(0.5)
        while True:
            assert time.monotonic() - start < CUT_OFF_WITHIN, f"still open: {data[:200]!r}"
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                _send(sock, b"a")
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    assert _status(data) == 200
    assert data.count(b"HTTP/1.1 ") == 1


def test_too_many_header_lines_are_431_and_closed(port: int) -> None:
    # 10,000 headers, and one more than allowed even within the head's size.
    for count in (10_000, MAX_HEADERS + 1):
        with _connect(port) as sock:
            _send(sock, _get(extra=b"".join(b"X-%d: v\r\n" % i for i in range(count))))
            data, _ = _until_closed(sock)
        assert _status(data) == 431, count
        assert b"too many header lines: at most 20" in data


def test_a_slow_head_is_cut_off(port: int) -> None:
    # A slowloris: a byte of the head every 0.2 s, never the end of it.
    request = _get(extra=b"X-Slow: " + b"s" * 1000)
    start = time.monotonic()
    data = b""
    with _connect(port) as sock:
        sock.settimeout(0.2)
        for byte in request:
            assert time.monotonic() - start < CUT_OFF_WITHIN, "the slow head was never cut off"
            try:
                sock.sendall(bytes([byte]))
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if data:
                break
        rest, _ = _until_closed(sock)
    assert _status(data + rest) == 408
    assert b"request head not received within 2 s" in data + rest


def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    with _connect(port) as sock:
        data, _ = _until_closed(sock)
    # Nothing of a request arrived, so nothing is answered.
    assert data == b""


def test_a_short_body_is_cut_off(service: tuple[int, Path]) -> None:
    port, log = service
    body = json.dumps({"inputs": [item(3)]}).encode()
    head = (
        b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 500\r\n\r\n"
    )
    with _connect(port) as sock:
        sock.sendall(head + body)
        data, _ = _until_closed(sock)
    assert len(body) < 500
    assert _status(data) == 408
    assert b"request body not received within 2 s" in data
    # The app counted the request it never got the body of, as a client gone away, and
    # did not take it for a server error.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert 'status="499"' in r.read().decode()
    assert "Exception in ASGI application" not in log.read_text()


def test_an_idle_keep_alive_connection_is_closed_after_keep_alive_s(port: int) -> None:
    with _connect(port) as sock:
        sock.sendall(_get())
        with sock.makefile("rb") as reader:
            assert _response(reader)[0] == 200
        # Still open well past uvicorn's default of 5 s, short of KEEP_ALIVE_S...
        sock.settimeout(6.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        # ... and then closed without another word.
        data, _ = _until_closed(sock)
    assert data == b""


def test_connections_over_the_cap_get_503(port: int) -> None:
    deadline = time.monotonic() + CUT_OFF_WITHIN
    held: list[socket.socket] = []
    try:
        # MAX_CONNECTIONS connections, each served (one may need a second try while a
        # connection of an earlier test is still being closed by the server)...
        while len(held) < MAX_CONNECTIONS:
            assert time.monotonic() < deadline, "fewer than MAX_CONNECTIONS were served"
            sock = _connect(port)
            sock.sendall(_get())
            with sock.makefile("rb") as reader:
                served = _response(reader)[0] == 200
            if served:
                held.append(sock)
            else:
                sock.close()
                time.sleep(0.2)
        # ... and one more is refused, and closed.
        with _connect(port) as extra:
            extra.sendall(_get())
            data, _ = _until_closed(extra)
        assert _status(data) == 503
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"\r\nretry-after: 1\r\n" in head.lower()
        assert b"application/json" in head.lower()
        detail = json.loads(body)["detail"]
        assert f"more than {MAX_CONNECTIONS} connections" in detail
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, requests are served again.
    while True:
        with _connect(port) as sock, sock.makefile("rb") as reader:
            sock.sendall(_get())
            if _response(reader)[0] == 200:
                break
        assert time.monotonic() < deadline + CUT_OFF_WITHIN, "never served again"
        time.sleep(0.2)


def test_error_answers_stay_small(port: int) -> None:
    # Whatever a request carries within the limits, an error answer does not echo it.
    huge_key = json.dumps({"inputs": [item()], "k" * 60_000: 1}).encode()
    requests = [
        _predict(huge_key),
        _predict(b"[" * 50_000),
        _predict(json.dumps({"inputs": ["x" * 50_000]}).encode()),
        _get(path="/" + "n" * 3000),
        _get(path="/predict?" + "q" * 3000),
        _predict(b"{}").replace(b"application/json", b"text/" + b"t" * 3000),
        b"DELETE /predict HTTP/1.1\r\nHost: t\r\n\r\n",
    ]
    with _connect(port) as sock, sock.makefile("rb") as reader:
        for request in requests:
            sock.sendall(request)
            status, body = _response(reader)
            assert 400 <= status < 500, (request[:60], body[:200])
            assert len(body) <= 1000, (request[:60], body[:200])
