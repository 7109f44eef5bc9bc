"""Reading the service's /metrics: the text exposition format to name -> value.

The exposition text below is what the generated service's prometheus_client writes;
the drills read ``db_up`` and the prediction log's counters from it.
"""

from __future__ import annotations

import pytest
from http_stub import StubServer

from generator.errors import SmokeFailed
from generator.harness import promtext

EXPOSITION = b"""\
# HELP http_requests_total HTTP requests answered, by route and status code.
# TYPE http_requests_total counter
http_requests_total{method="POST",route="/predict",status="200"} 1072.0
http_requests_total{method="GET",route="/a b{c}",status="200"} 3.0
# HELP db_up 1 when the last write to, or check of, the database succeeded.
# TYPE db_up gauge
db_up 0.0
# TYPE db_write_failures_total counter
db_write_failures_total 5.0
db_rows_written_total 1.008e+03
db_queue_depth NaN
model_info{name="demo-mlp-small",version="1.0.0"} 1.0
process_start_time_seconds 1.7e+09 1700000000000
this line is not a sample
"""


def test_samples_are_read_by_series_name() -> None:
    samples = promtext.parse(EXPOSITION.decode())
    assert samples["db_up"] == 0.0
    assert samples["db_write_failures_total"] == 5.0
    assert samples["db_rows_written_total"] == 1008.0
    assert samples['http_requests_total{method="POST",route="/predict",status="200"}'] == 1072
    # A label value with a space and braces, and a sample with a timestamp, still parse.
    assert samples['http_requests_total{method="GET",route="/a b{c}",status="200"}'] == 3
    assert samples["process_start_time_seconds"] == 1.7e9
    assert samples["db_queue_depth"] != samples["db_queue_depth"]  # NaN
    assert "this" not in samples and "# HELP" not in str(samples)


def test_scrape_reads_the_apps_metrics_page(http_stub: StubServer) -> None:
    http_stub.answer(200, EXPOSITION, path="/metrics")
    assert promtext.scrape(http_stub.url)["db_up"] == 0.0


def test_a_metrics_page_that_fails_is_a_smoke_failure(http_stub: StubServer) -> None:
    http_stub.answer(500, {"detail": "boom"}, path="/metrics")
    with pytest.raises(SmokeFailed, match="GET /metrics answered 500"):
        promtext.scrape(http_stub.url)
