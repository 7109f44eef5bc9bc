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
from generator.harness.probes import check_output, count_inputs, malformed, predict, shape_of
from generator.harness.readiness import failed_state


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "predict_request.json"
    path.write_text(json.dumps({"inputs": [[1.0, 2.0], [3.0, 4.0]]}), encoding="utf-8")
    return path


MODEL = {"name": "m", "output_shape": [1], "labels": None}
CLASSIFIER = {"name": "c", "output_shape": [3], "labels": ["cat", "dog", "owl"]}


def test_a_good_answer_passes_with_its_figures(http_stub: StubServer, sample: Path) -> None:
    http_stub.answer(200, MODEL, path="/model")
    http_stub.answer(200, {"outputs": [[0.1], [0.2]], "model_version": "1", "request_id": "a-1"})
    figures = predict(http_stub.url, sample)
    assert (figures["status"], figures["outputs"], figures["request_id"]) == (200, 2, "a-1")
    assert figures["checked"] == "shape [1]"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, {"detail": "boom"}, "POST /predict answered 500"),
        (200, {"result": []}, "no `outputs` list"),
        (200, {"outputs": [[0.1]], "request_id": "x"}, "gave 1 outputs for 2 inputs"),
        (200, {"outputs": [[0.1], [0.2]]}, "no `request_id`"),
        (200, {"outputs": [[0.1], [0.2, 0.3]], "request_id": "x"}, r"shape \[2\], the model"),
        (200, {"outputs": [0.1, 0.2], "request_id": "x"}, r"has shape \[\], the model declares"),
    ],
)
def test_a_wrong_answer_fails_with_the_reason(
    http_stub: StubServer, sample: Path, status: int, body: Any, message: str
) -> None:
    http_stub.answer(200, MODEL, path="/model")
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
    with pytest.raises(SmokeFailed, match=r"GET /model got no answer"):
        predict("http://127.0.0.1:1", sample)


def test_a_model_description_is_required(http_stub: StubServer, sample: Path) -> None:
    http_stub.answer(503, {"detail": "not ready"}, path="/model")
    with pytest.raises(SmokeFailed, match="GET /model answered 503"):
        predict(http_stub.url, sample)


def _ranked(*pairs: tuple[str, float]) -> dict[str, Any]:
    return {"labels": [{"label": label, "score": score} for label, score in pairs]}


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (_ranked(("dog", 0.7), ("cat", 0.2)), None),
        (_ranked(("fox", 0.7)), "the label 'fox', not one of the model's"),
        (_ranked(("dog", 1.5)), "the score 1.5 for 'dog'"),
        (_ranked(("dog", 0.2), ("cat", 0.7)), "not best first"),
        ({"labels": []}, "has no labels"),
        ([0.1, 0.2, 0.3], "has no labels"),
    ],
)
def test_a_classifier_output_is_checked_against_the_labels(
    output: Any, message: str | None
) -> None:
    if message is None:
        assert check_output(output, CLASSIFIER) == "top 2 of 3 labels"
    else:
        with pytest.raises(SmokeFailed, match=message):
            check_output(output, CLASSIFIER)


def test_shape_of_nested_lists() -> None:
    assert shape_of([[1, 2, None], [3, 4.5, 6]]) == [2, 3]
    assert shape_of([[1, 2], [3]]) is None
    assert shape_of([]) == [0]
    assert shape_of(1.5) == []
    assert shape_of("x") is None


def test_an_upload_must_get_the_same_answer(http_stub: StubServer, tmp_path: Path) -> None:
    sample = tmp_path / "predict_request.json"
    sample.write_text(json.dumps({"inputs": [{"image": "eA=="}]}), encoding="utf-8")
    image = tmp_path / "image.jpg"
    image.write_bytes(b"x")
    http_stub.answer(200, CLASSIFIER, path="/model")
    http_stub.answer(200, {"outputs": [_ranked(("owl", 0.9))], "request_id": "r"})
    figures = predict(http_stub.url, sample, image)
    assert figures["upload_status"] == 200
    assert figures["checked"] == "top 1 of 3 labels"


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
