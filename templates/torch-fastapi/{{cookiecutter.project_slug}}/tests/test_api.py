"""The HTTP API: happy paths, request ids, and every 4xx a client can cause."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import PROJECT_DIR, serve
from {{ cookiecutter.package_name }}.settings import Settings


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
            assert model["input_shape"] == [4]
            assert model["output_shape"] == [3]
            assert model["input_dtype"] == "float32"
            assert model["format"] == "torchscript"
            assert model["device"] == "cpu"
            assert model["name"] == "demo-mlp-small"

    asyncio.run(go())


def test_example_request_is_valid(settings_factory: Callable[..., Settings]) -> None:
    body = json.loads((PROJECT_DIR / "examples" / "predict_request.json").read_text())
    response = call(settings_factory(), "POST", "/predict", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert len(data["outputs"]) == len(body["inputs"])
    assert all(len(row) == 3 for row in data["outputs"])
    assert data["model_version"] == "1.0.0"
    assert data["request_id"] == response.headers["x-request-id"]
    assert len(data["request_id"]) == 32


def test_caller_request_id_is_kept(settings_factory: Callable[..., Settings]) -> None:
    response = call(
        settings_factory(),
        "POST",
        "/predict",
        json={"inputs": [[1, 2, 3, 4]]},
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
    ("wrong shape", '{"inputs": [[1, 2, 3]]}', 422, "each item must have shape [4], got [3]"),
    ("ragged", '{"inputs": [[1, 2, 3, 4], [1, 2]]}', 422, "all of the same shape"),
    ("nan", '{"inputs": [[1, 2, 3, NaN]]}', 422, "NaN or infinity"),
    ("infinity", '{"inputs": [[1, 2, 3, -Infinity]]}', 422, "NaN or infinity"),
    ("string", '{"inputs": [[1, 2, "3", 4]]}', 422, "not a number"),
    ("bool", '{"inputs": [[1, 2, true, 4]]}', 422, "not a number"),
    ("null", '{"inputs": [[1, 2, null, 4]]}', 422, "not a number"),
    ("empty", '{"inputs": []}', 422, "inputs"),
    ("missing", "{}", 422, "inputs: Field required"),
    ("extra field", '{"inputs": [[1, 2, 3, 4]], "x": 1}', 422, "x: Extra inputs are not permitted"),
    ("not json", '{"inputs": [[1, 2', 422, "JSON"),
    (
        "too many",
        json.dumps({"inputs": [[0, 0, 0, 0]] * 33}),
        413,
        "too many items: got 33, at most 32",
    ),
    ("overflow", '{"inputs": [[1, 2, 3, 1e300]]}', 422, "out of range for float32"),
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


def test_body_over_limit_is_refused_from_the_header(
    settings_factory: Callable[..., Settings],
) -> None:
    body = json.dumps({"inputs": [[0.0, 0.0, 0.0, 0.0]] * 100})
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
    async def chunks() -> Any:
        yield b'{"inputs": ['
        for _ in range(200):
            yield b"[0.0, 0.0, 0.0, 0.0],"
        yield b"[0.0, 0.0, 0.0, 0.0]]}"

    async def go() -> Any:
        async with serve(settings_factory(max_body_bytes=1024)) as (_, client):
            # A generator body is sent without Content-Length (chunked).
            return await client.post(
                "/predict", content=chunks(), headers={"content-type": "application/json"}
            )

    response = asyncio.run(go())
    assert response.status_code == 413
    assert "at most 1024 bytes" in response.json()["detail"]


def test_integer_model_inputs_must_be_whole(settings_factory: Callable[..., Settings]) -> None:
    from {{ cookiecutter.package_name }}.model import InputError, prepare_inputs

    tensor = prepare_inputs([[1, 2]], (2,), "int64", 8)
    assert tensor.dtype.is_floating_point is False
    try:
        prepare_inputs([[1, 2.5]], (2,), "int64", 8)
    except InputError as exc:
        assert "whole" in str(exc)
    else:
        raise AssertionError("a fractional value was accepted for an int64 model")


@pytest.mark.parametrize(
    ("dtype", "value", "accepted"),
    [
        ("int32", 2**31 - 1, True),
        ("int32", 2**31, False),
        ("int32", -(2**31), True),
        ("int32", -(2**31) - 1, False),
        # 2**63 - 1 is not a float64; the nearest one is 2**63, which int64 cannot hold.
        ("int64", 2**62, True),
        ("int64", 2**63, False),
        ("int64", -(2**63), True),
        ("float16", 65504.0, True),
        ("float16", 70000.0, False),
    ],
)
def test_values_at_the_edge_of_the_dtype(dtype: str, value: float, accepted: bool) -> None:
    from {{ cookiecutter.package_name }}.model import InputError, prepare_inputs

    if accepted:
        tensor = prepare_inputs([[value]], (1,), dtype, 8)
        assert tensor.item() == value
    else:
        with pytest.raises(InputError, match=f"out of range for {dtype}"):
            prepare_inputs([[value]], (1,), dtype, 8)


def test_openapi_has_examples(settings_factory: Callable[..., Settings]) -> None:
    response = call(settings_factory(), "GET", "/openapi.json")
    schema = response.json()
    assert "/predict" in schema["paths"]
    assert schema["components"]["schemas"]["PredictRequest"]["examples"]
    docs = call(settings_factory(), "GET", "/docs")
    assert docs.status_code == 200


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
            await client.post("/predict", json={"inputs": [[1, 2, 3, 4]]})
            await client.post("/predict", json={"inputs": [[1, 2]]})

    with caplog.at_level(logging.DEBUG, logger="{{ cookiecutter.package_name }}.middleware.access"):
        asyncio.run(go())
    seen = {
        f"{getattr(record, 'path', '')} {getattr(record, 'status', '')}": record.levelno
        for record in caplog.records
        if record.name.endswith(".access")
    }
    for key, level in expected.items():
        assert seen.get(key) == level, (key, seen)
