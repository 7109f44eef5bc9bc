"""The HTTP probes against a small real server on 127.0.0.1 that answers what we tell it.

The end-to-end tests show the probes pass against the generated service; these show each
probe fails, with a message that says why, when a service answers wrongly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from http_stub import StubServer

from generator.errors import SmokeFailed
from generator.harness import loopback
from generator.harness.probes import count_inputs, malformed, predict
from generator.harness.readiness import failed_state


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "predict_request.json"
    path.write_text(json.dumps({"inputs": [[1.0, 2.0], [3.0, 4.0]]}), encoding="utf-8")
    return path


def test_a_good_answer_passes_with_its_figures(http_stub: StubServer, sample: Path) -> None:
    http_stub.answer(200, {"outputs": [[0.1], [0.2]], "model_version": "1", "request_id": "a-1"})
    figures = predict(http_stub.url, sample)
    assert (figures["status"], figures["outputs"], figures["request_id"]) == (200, 2, "a-1")


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
    http_stub: StubServer, sample: Path, status: int, body: Any, message: str
) -> None:
    http_stub.answer(status, body)
    with pytest.raises(SmokeFailed, match=message):
        predict(http_stub.url, sample)


def test_malformed_requests_must_get_a_client_error(http_stub: StubServer) -> None:
    http_stub.answer(422, {"detail": "invalid"})
    assert malformed(http_stub.url) == {"broken_json": 422, "wrong_type": 422}
    http_stub.answer(200, {"outputs": []})
    with pytest.raises(SmokeFailed, match=r"\(broken_json\) got 200, not a 4xx"):
        malformed(http_stub.url)
    http_stub.answer(500, {})
    with pytest.raises(SmokeFailed, match="got 500"):
        malformed(http_stub.url)


def test_no_answer_at_all_is_a_smoke_failure_naming_the_request(sample: Path) -> None:
    with pytest.raises(SmokeFailed, match=r"POST http://127\.0\.0\.1:1/predict got no answer"):
        predict("http://127.0.0.1:1", sample)


def test_loopback_http_answers_error_statuses_and_refuses_other_hosts(
    http_stub: StubServer,
) -> None:
    http_stub.answer(503, {"ready": False}, path="/ready")
    assert loopback.request(http_stub.url + "/ready") == (503, b'{"ready": false}')
    assert loopback.request(http_stub.url + "/health")[0] == 200
    with pytest.raises(loopback.NoAnswer):
        loopback.request("http://127.0.0.1:1/ready", timeout=2)
    with pytest.raises(ValueError, match="only http:// URLs on loopback"):
        loopback.request("http://192.0.2.1/ready")


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
