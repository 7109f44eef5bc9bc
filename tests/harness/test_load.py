"""The drills' steady /predict load: every request it sends is accounted for.

Against the small real server on 127.0.0.1: what a user reads in the db-outage step
(requests, failed, the ids sent after a moment) must match what the server saw.
"""

from __future__ import annotations

import time

import pytest
from http_stub import StubServer

from generator.harness.load import Load, LoadResult, Sent, account

OK = {"outputs": [[0.1]], "request_id": "r-1"}


def test_every_request_is_counted_and_none_failed(http_stub: StubServer) -> None:
    http_stub.answer(200, OK)
    with Load(http_stub.url + "/predict", b"{}", clients=3, pause=0.01) as load:
        time.sleep(0.5)
        midway = load.snapshot()
    result = load.stop()
    assert len(midway.sent) > 0
    assert len(result.sent) >= len(midway.sent)
    # The server answered exactly the requests the load says it sent: none lost, none extra.
    assert http_stub.hits["/predict"] == len(result.sent)
    assert result.failed == ()
    figures = result.figures()
    assert figures["requests"] == len(result.sent)
    assert figures["failed"] == 0
    assert figures["requests_per_second"] > 0
    assert result.failure_summary() == "no request failed"
    # Leaving the block stopped every client: nothing is sent any more.
    time.sleep(0.1)
    assert http_stub.hits["/predict"] == len(result.sent)


def test_a_failing_service_is_counted_with_the_reason(http_stub: StubServer) -> None:
    http_stub.answer(503, {"detail": "busy"})
    with Load(http_stub.url + "/predict", b"{}", clients=2, pause=0.01) as load:
        time.sleep(0.3)
    result = load.stop()
    assert len(result.failed) == len(result.sent) == http_stub.hits["/predict"] > 0
    assert result.figures()["failed"] == len(result.sent)
    assert result.failure_summary().endswith("requests failed (first: status 503)")


def test_nothing_listening_is_a_failure_not_a_crash() -> None:
    with StubServer() as stub:
        url = stub.url + "/predict"
    # The server is gone: every request gets no answer, and the load still reports.
    with Load(url, b"{}", clients=1, pause=0.01, timeout=1.0) as load:
        time.sleep(0.2)
    result = load.stop()
    assert result.sent and all(s.error == "no answer" for s in result.sent)


def test_an_exception_in_the_block_stops_the_load(http_stub: StubServer) -> None:
    http_stub.answer(200, OK)
    with pytest.raises(RuntimeError), Load(http_stub.url + "/predict", b"{}", pause=0.01):
        time.sleep(0.1)
        raise RuntimeError("a drill failed")
    seen = http_stub.hits.get("/predict", 0)
    time.sleep(0.2)
    assert http_stub.hits.get("/predict", 0) == seen


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b'{"request_id": "a-1", "outputs": []}', ""),
        (None, b"", "no answer"),
        (500, b"{}", "status 500"),
        (200, b"<html>", "a 200 that is not JSON"),
        (200, b'{"outputs": []}', "a 200 without a request_id"),
        (200, b'["a-1"]', "a 200 without a request_id"),
    ],
)
def test_each_answer_is_judged(status: int | None, body: bytes, error: str) -> None:
    sent = account(1.0, 0.01, status, body)
    assert sent.error == error
    assert sent.ok is (error == "")
    assert sent.request_id == ("a-1" if sent.ok else None)


def test_ids_sent_after_a_moment_are_those_of_successful_requests_sent_then() -> None:
    result = LoadResult(
        (
            Sent(1.0, 0.1, 200, "before"),
            Sent(5.0, 0.1, 200, "at"),
            Sent(6.0, 0.1, None, None, "no answer"),
            Sent(7.0, 0.1, 200, "after"),
        ),
        seconds=8.0,
    )
    assert result.ids_sent_after(5.0) == ["at", "after"]
    assert result.figures()["requests_per_second"] == 0.5
    assert result.failure_summary() == "1 of 4 /predict requests failed (first: no answer)"
