"""The HTTP probes against a small real server on 127.0.0.1 that answers what we tell it.

The end-to-end tests show the probes pass against the generated service; these show each
probe fails, with a message that says why, when a service answers wrongly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from generator.errors import SmokeFailed
from generator.harness.probes import count_inputs, malformed, predict
from generator.harness.stack import failed_state, http_status


class _Handler(BaseHTTPRequestHandler):
    """Answers every request with the status and body set on the class."""

    status: ClassVar[int] = 200
    body: ClassVar[Any] = {}

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        data = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """Answer a GET."""
        self._answer()

    def do_POST(self) -> None:
        """Answer a POST."""
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "predict_request.json"
    path.write_text(json.dumps({"inputs": [[1.0, 2.0], [3.0, 4.0]]}), encoding="utf-8")
    return path


def _serve(status: int, body: Any) -> None:
    _Handler.status = status
    _Handler.body = body


def test_a_good_answer_passes_with_its_figures(server: str, sample: Path) -> None:
    _serve(200, {"outputs": [[0.1], [0.2]], "model_version": "1", "request_id": "abc-1"})
    figures = predict(server, sample)
    assert (figures["status"], figures["outputs"], figures["request_id"]) == (200, 2, "abc-1")


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, {"detail": "boom"}, "POST /predict answered 500"),
        (200, {"result": []}, "no `outputs` list"),
        (200, {"outputs": [[0.1]], "request_id": "x"}, "gave 1 outputs for 2 inputs"),
        (200, {"outputs": [[0.1], [0.2]]}, "no `request_id`"),
    ],
)
def test_a_wrong_answer_fails_with_the_reason(
    server: str, sample: Path, status: int, body: Any, message: str
) -> None:
    _serve(status, body)
    with pytest.raises(SmokeFailed, match=message):
        predict(server, sample)


def test_malformed_requests_must_get_a_client_error(server: str) -> None:
    _serve(422, {"detail": "invalid"})
    assert malformed(server) == {"broken_json": 422, "wrong_type": 422}
    _serve(200, {"outputs": []})
    with pytest.raises(SmokeFailed, match=r"\(broken_json\) got 200, not a 4xx"):
        malformed(server)
    _serve(500, {})
    with pytest.raises(SmokeFailed, match="got 500"):
        malformed(server)


def test_http_status_is_none_when_nothing_listens(server: str) -> None:
    _serve(503, {"ready": False})
    assert http_status(server + "/ready") == 503
    assert http_status("http://127.0.0.1:1/ready", timeout=2) is None


def test_a_failed_state_is_recognised_so_the_wait_stops_early() -> None:
    assert failed_state(b'{"ready": false, "state": "failed", "error": "bad model"}') == (
        "bad model"
    )
    assert failed_state(b'{"ready": false, "state": "starting"}') is None
    assert failed_state(b"<html>") is None


def test_count_inputs() -> None:
    assert count_inputs({"inputs": [[1], [2], [3]]}) == 3
    assert count_inputs({"instances": []}) is None
    assert count_inputs([1, 2]) is None
