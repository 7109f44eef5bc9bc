"""The tests' one small HTTP server (importable from every test folder).

A threaded HTTP/1.1 server on 127.0.0.1 that answers every request with the status and
JSON body a test sets (or raw bytes, as text: a ``/metrics`` page), for one path or for
all of them. It keeps connections alive, as the benchmarks' load generator expects,
reads (and ignores) any request body, and counts the requests it answered by path.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StubServer:
    """Answers what a test says: ``answer(503, {...}, path="/busy")``; 200 ``{}`` otherwise."""

    def __init__(self) -> None:
        self.default: tuple[int, Any] = (200, {})
        self.by_path: dict[str, tuple[int, Any]] = {}
        #: requests answered so far, by path
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        handler = type("StubHandler", (_Handler,), {"stub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def answer(self, status: int, body: Any, path: str | None = None) -> None:
        """Answer requests for ``path`` (every path when None) with ``status`` and ``body``.

        ``body`` goes out as JSON, or as it is (``text/plain``) when it is bytes.
        """
        if path is None:
            self.default = (status, body)
        else:
            self.by_path[path] = (status, body)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes: without TCP_NODELAY the second waits
    # for the client's delayed ACK, about 40 ms per answer.
    disable_nagle_algorithm = True
    stub: StubServer

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = self.stub.by_path.get(self.path, self.stub.default)
        raw = isinstance(body, bytes)
        data = body if raw else json.dumps(body).encode()
        with self.stub._lock:
            self.stub.hits[self.path] = self.stub.hits.get(self.path, 0) + 1
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if raw else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""
