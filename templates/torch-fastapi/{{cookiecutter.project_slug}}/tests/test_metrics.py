"""Prometheus metrics: every documented series is exposed and moves."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from {{ cookiecutter.package_name }}.settings import Settings

from conftest import DEMO_NAME, item, serve

SERIES = [
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_requests_in_flight",
    "inference_batch_size_bucket",
    "inference_duration_seconds_bucket",
    "inference_errors_total",
    "prediction_items_total",
    "batch_queue_rejections_total",
    "model_ready",
    "model_info",
    "db_up",
    "db_rows_written_total",
    "db_write_failures_total",
    "db_queue_dropped_total",
    "db_queue_depth",
]


def test_metrics_are_exposed_and_count(settings_factory: Callable[..., Settings]) -> None:
    async def go() -> tuple[str, str]:
        async with serve(settings_factory()) as (_, client):
            await client.post("/predict", json={"inputs": [item(1), item(2)]})
            await client.post("/predict", json={"inputs": []})
            response = await client.get("/metrics")
            return response.headers["content-type"], response.text

    content_type, text = asyncio.run(go())
    assert content_type.startswith("text/plain")
    for name in SERIES:
        assert re.search("^" + re.escape(name) + r"[ {]", text, re.M), name
    assert 'http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'http_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert "prediction_items_total 2.0" in text
    assert "model_ready 1.0" in text
    assert 'model_info{name="' + DEMO_NAME + '"' in text


def test_every_route_is_labelled_by_its_template(
    settings_factory: Callable[..., Settings],
) -> None:
    # The docs' pages, the OpenAPI document and the docs' assets (a mount) each count
    # under their own route; random paths all count as one "unmatched" route.
    async def go() -> str:
        async with serve(settings_factory()) as (_, client):
            for path in ("/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui.css"):
                assert (await client.get(path)).status_code == 200, path
            for path in ("/nope", "/wp-login.php", "/predict/x"):
                assert (await client.get(path)).status_code == 404, path
            return (await client.get("/metrics")).text

    text = asyncio.run(go())
    for route in ("/docs", "/redoc", "/openapi.json", "/docs-assets"):
        assert f'route="{route}",status="200"' in text, route
    assert 'http_requests_total{method="GET",route="unmatched",status="404"} 3.0' in text
    routes = set(re.findall(r'^http_requests_total\{[^}]*route="([^"]+)"', text, re.M))
    assert routes == {"/docs", "/redoc", "/openapi.json", "/docs-assets", "unmatched"}
