{%- set pkg = cookiecutter.package_name -%}
{%- set image = cookiecutter.task == "image-classification" -%}
"""The HTTP API: happy paths, request ids, the OpenAPI page, and the 4xx a client can cause."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from {{ pkg }}.routes import (
    DirectRoute,
    router,
)
from {{ pkg }}.settings import Settings

from conftest import DEMO_NAME, PACKAGE, PROJECT_DIR, item, serve


def call(settings: Settings, method: str, path: str, **kwargs: Any) -> Any:
    """One request against a freshly started app."""

    async def go() -> Any:
        async with serve(settings) as (_, client):
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_health_ready_and_model(
    settings_factory: Callable[..., Settings], demo_model: tuple[Path, str]
) -> None:
    async def go() -> None:
        async with serve(settings_factory()) as (_, client):
            health = await client.get("/health")
            assert health.status_code == 200, health.text
            assert health.json()["state"] == "ready"
            ready = await client.get("/ready")
            assert ready.status_code == 200
            assert ready.json() == {
                "ready": True,
                "state": "ready",
                "db": "disabled",
                "db_error": None,
                "error": None,
            }
            model = (await client.get("/model")).json()
            assert model["sha256"] == demo_model[1]
            assert model["format"] == {{ cookiecutter.model_format | json_str }}
            assert model["device"] == "cpu"
            assert model["name"] == DEMO_NAME
            assert model["input_dtype"] == "float32"
{%- if image %}
            assert model["input_shape"] == [3, 32, 32]
            assert model["output_shape"] == [10]
            assert len(model["labels"]) == 10 and "cat" in model["labels"]
            assert model["extra"]["mean"] == [0.5, 0.5, 0.5]
{%- else %}
            assert model["input_shape"] == [4]
            assert model["output_shape"] == [3]
            assert model["labels"] is None
{%- endif %}

    asyncio.run(go())


def test_example_request_is_valid(settings_factory: Callable[..., Settings]) -> None:
    body = json.loads((PROJECT_DIR / "examples" / "predict_request.json").read_text())
    response = call(settings_factory(), "POST", "/predict", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert len(data["outputs"]) == len(body["inputs"])
{%- if image %}
    for output in data["outputs"]:
        scores = [label["score"] for label in output["labels"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True)
        assert all(0 <= score <= 1 for score in scores)
{%- else %}
    assert all(len(row) == 3 for row in data["outputs"])
{%- endif %}
    assert data["model_version"] == "1.0.0"
    assert data["request_id"] == response.headers["x-request-id"]
    assert len(data["request_id"]) == 32


def test_caller_request_id_is_kept(settings_factory: Callable[..., Settings]) -> None:
    response = call(
        settings_factory(),
        "POST",
        "/predict",
        json={"inputs": [item()]},
        headers={"X-Request-ID": "trace-42.a"},
    )
    assert response.json()["request_id"] == "trace-42.a"
    assert response.headers["x-request-id"] == "trace-42.a"


def test_unsafe_request_id_is_replaced(settings_factory: Callable[..., Settings]) -> None:
    response = call(
        settings_factory(), "GET", "/health", headers={"X-Request-ID": "bad id\twith space"}
    )
    assert response.headers["x-request-id"] != "bad id\twith space"
    assert len(response.headers["x-request-id"]) == 32


BAD_BODIES: list[tuple[str, str, int, str]] = [
{%- if image %}
    ("not base64", '{"inputs": [{"image": "not base64!"}]}', 422, "inputs.0.image: is not valid"),
    ("number", '{"inputs": [{"image": 5}]}', 422, "inputs.0.image"),
    ("unknown key", '{"inputs": [{"image": "", "x": 1}]}', 422, "inputs.0.x: Extra inputs"),
    ("not an image", '{"inputs": [{"image": "aGVsbG8="}]}', 422, "inputs.0: is not a JPEG or PNG"),
    ("empty image", '{"inputs": [{"image": ""}]}', 422, "inputs.0: the image is empty"),
    ("bare list", '{"inputs": [[1, 2]]}', 422, "inputs.0: Input should be an object"),
{%- else %}
    ("wrong shape", '{"inputs": [[1, 2, 3]]}', 422, "inputs.0: must have shape [4], got [3]"),
    ("second item", '{"inputs": [[1, 2, 3, 4], [1, 2]]}', 422, "inputs.1: must have shape [4]"),
    ("ragged", '{"inputs": [[[1, 2], [3]]]}', 422, "all of the same length"),
    ("nan", '{"inputs": [[1, 2, 3, NaN]]}', 422, "NaN or infinity"),
    ("infinity", '{"inputs": [[1, 2, 3, -Infinity]]}', 422, "NaN or infinity"),
    ("string", '{"inputs": [[1, 2, "3", 4]]}', 422, "not a number"),
    ("bool", '{"inputs": [[1, 2, true, 4]]}', 422, "not a number"),
    ("null", '{"inputs": [[1, 2, null, 4]]}', 422, "not a number"),
    ("not a list", '{"inputs": [5]}', 422, "inputs.0: Input should be a valid array"),
    ("overflow", '{"inputs": [[1, 2, 3, 1e300]]}', 422, "out of range for float32"),
{%- endif %}
    ("empty", '{"inputs": []}', 422, "inputs: List should have at least 1 item"),
    ("missing", "{}", 422, "inputs: Field required"),
    ("extra field", '{"inputs": [], "x": 1}', 422, "x: Extra inputs are not permitted"),
    ("not json", '{"inputs": [[1, 2', 422, "the body is not valid JSON"),
    ("empty body", "", 422, "the body is not valid JSON"),
    ("wrong type", '{"inputs": "not a list"}', 422, "inputs: Input should be a valid array"),
    ("too many", json.dumps({"inputs": [item()] * 33}), 413, "too many items: got 33, at most 32"),
]


def test_bad_bodies_get_a_clear_4xx(settings_factory: Callable[..., Settings]) -> None:
    async def go() -> None:
        settings = settings_factory(batching_enabled=True, batch_max_size=32)
        async with serve(settings) as (_, client):
            for name, body, status, message in BAD_BODIES:
                response = await client.post(
                    "/predict", content=body, headers={"content-type": "application/json"}
                )
                assert response.status_code == status, (name, response.text)
                detail = response.json()["detail"]
                assert isinstance(detail, str), name
                assert message in detail, (name, detail)
                assert "x-request-id" in response.headers

    asyncio.run(go())


def test_an_undecodable_body_is_a_422_like_any_bad_json(
    settings_factory: Callable[..., Settings],
) -> None:
    for content_type in ("application/json", None):
        headers = {"content-type": content_type} if content_type else {}
        response = call(
            settings_factory(), "POST", "/predict", content=b"\xff\xfe{", headers=headers
        )
        assert response.status_code == 422, response.text
        assert "the body is not valid JSON" in response.json()["detail"]


def test_error_answers_are_bounded(settings_factory: Callable[..., Settings]) -> None:
    # A huge unknown key is named, not echoed back in full.
    body = json.dumps({"inputs": [item()], "k" * 65536: 1})
    response = call(
        settings_factory(),
        "POST",
        "/predict",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert len(response.content) < 1000
    assert "Extra inputs are not permitted" in response.json()["detail"]


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("application/vnd.api+json", 200),
        (None, 200),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
    ],
)
def test_content_types(
    settings_factory: Callable[..., Settings], content_type: str | None, status: int
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps({"inputs": [item()]})
    response = call(settings_factory(), "POST", "/predict", content=body, headers=headers)
    assert response.status_code == status, response.text
    if status == 415:
        assert "send application/json" in response.json()["detail"]


def test_body_over_limit_is_refused_from_the_header(
    settings_factory: Callable[..., Settings],
) -> None:
    body = json.dumps({"inputs": [item()] * 100})
    response = call(
        settings_factory(max_body_bytes=1024),
        "POST",
        "/predict",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "request body too large: at most 1024 bytes"


def test_streamed_body_over_limit_is_refused(settings_factory: Callable[..., Settings]) -> None:
    chunk = json.dumps(item()).encode()

    async def chunks() -> Any:
        yield b'{"inputs": ['
        for _ in range(200):
            yield chunk + b","
        yield chunk + b"]}"

    async def go() -> Any:
        async with serve(settings_factory(max_body_bytes=1024)) as (_, client):
            # A generator body is sent without Content-Length (chunked).
            return await client.post(
                "/predict", content=chunks(), headers={"content-type": "application/json"}
            )

    response = asyncio.run(go())
    assert response.status_code == 413
    assert "at most 1024 bytes" in response.json()["detail"]


def test_openapi_shows_the_items_of_the_loaded_model(
    settings_factory: Callable[..., Settings],
) -> None:
    async def go() -> tuple[dict[str, Any], int]:
        async with serve(settings_factory()) as (_, client):
            schema = (await client.get("/openapi.json")).json()
            return schema, await _docs_offline(client)

    schema, docs = asyncio.run(go())
    components = schema["components"]["schemas"]
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/PredictRequest"}
    inputs = components["PredictRequest"]["properties"]["inputs"]
    assert inputs["items"] == {"$ref": "#/components/schemas/Input"}
{%- if image %}
    assert components["Input"]["properties"]["image"]["contentEncoding"] == "base64"
    assert body["multipart/form-data"]["schema"]["required"] == ["image"]
    assert components["Output"]["properties"]["labels"]["items"] == {
        "$ref": "#/components/schemas/Label"
    }
{%- else %}
    # The exact shape of an item of the demo model, [4], from the loaded model.
    assert components["Input"]["type"] == "array"
    assert (components["Input"]["minItems"], components["Input"]["maxItems"]) == (4, 4)
    assert components["Input"]["items"] == {"type": "number"}
    assert (components["Output"]["minItems"], components["Output"]["maxItems"]) == (3, 3)
    assert "multipart/form-data" not in body
{%- endif %}
    assert docs == 200


async def _docs_offline(client: Any) -> int:
    """GET /docs and /redoc, and every script and style they load: all from the service."""
    import re

    for page in ("/docs", "/redoc"):
        html = await client.get(page)
        assert html.status_code == 200, page
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html.text)
        assert assets, page
        for url in assets:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            assert (await client.get(url)).status_code == 200, url
    return 200


@pytest.mark.parametrize(
    ("access_log", "expected"),
    [
        # (path, status) -> the level of its access line, None for no line at all
        ("errors", {"/predict 200": logging.DEBUG, "/predict 422": logging.INFO}),
        ("all", {"/predict 200": logging.INFO, "/health 200": logging.DEBUG}),
        ("off", {"/predict 200": None, "/predict 422": None, "/health 200": None}),
    ],
)
def test_access_log_levels(
    settings_factory: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    access_log: str,
    expected: dict[str, int | None],
) -> None:
    async def go() -> None:
        async with serve(settings_factory(access_log=access_log)) as (_, client):
            await client.get("/health")
            await client.post("/predict", json={"inputs": [item()]})
            await client.post("/predict", json={"inputs": []})

    with caplog.at_level(logging.DEBUG, logger=f"{PACKAGE}.middleware.access"):
        asyncio.run(go())
    seen = {
        f"{getattr(record, 'path', '')} {getattr(record, 'status', '')}": record.levelno
        for record in caplog.records
        if record.name.endswith(".access")
    }
    for key, level in expected.items():
        assert seen.get(key) == level, (key, seen)


def test_every_route_is_direct_and_predict_is_matched_first() -> None:
    paths = [route.path for route in router.routes]
    assert paths[0] == "/predict"
    assert all(isinstance(route, DirectRoute) for route in router.routes)


def test_a_direct_route_refuses_an_endpoint_that_takes_more_than_the_request() -> None:
    async def endpoint(request: object, limit: int) -> None:
        """Would need FastAPI's parameter solving."""

    with pytest.raises(TypeError, match=r"must take \(request\) only"):
        DirectRoute("/x", endpoint)
