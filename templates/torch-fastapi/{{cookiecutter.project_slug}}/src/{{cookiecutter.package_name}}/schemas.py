"""Request and response bodies (they also drive the OpenAPI page at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PredictRequest(BaseModel):
    """A batch of items; each item is a nested list of numbers of the model's input shape."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"inputs": [[0.5, -1.0, 2.0, 0.25]]}]},
    )

    inputs: list[Any] = Field(
        ...,
        min_length=1,
        description="Items to predict. Shape and dtype are listed by GET /model.",
    )


class PredictResponse(BaseModel):
    """Outputs in the order of the inputs."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "outputs": [[0.12, -0.4, 0.9]],
                    "model_version": "1.0.0",
                    "request_id": "6f1c2b0e3f9a4d5c8b7a6e5d4c3b2a19",
                }
            ]
        },
    )

    outputs: list[Any]
    model_version: str
    request_id: str


class ErrorResponse(BaseModel):
    """What every 4xx and 5xx answer of this service looks like."""

    detail: str


class HealthResponse(BaseModel):
    """Liveness: the process answers; ``state`` tells whether the model is usable."""

    status: str
    state: str
    error: str | None = None


class ReadyResponse(BaseModel):
    """Readiness: the model is loaded; the database state is reported, not required."""

    ready: bool
    state: str
    db: str
    db_error: str | None = None
    error: str | None = None


class ModelResponse(BaseModel):
    """Description of the served model."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str
    sha256: str
    format: str
    device: str
    input_shape: list[int]
    input_dtype: str
    output_shape: list[int]
    max_items_per_request: int
    batching: bool
