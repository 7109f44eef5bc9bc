"""HTTP endpoints: health, readiness, model description, prediction, metrics."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from datetime import UTC, datetime
from typing import Any

import torch
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from .batching import OverloadedError, StoppedError
from .db import PredictionRecord
from .model import InputError, LoadedModel
from .schemas import (
    ErrorResponse,
    HealthResponse,
    ModelResponse,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
)
from .state import Runtime, ServiceState

log = logging.getLogger(__name__)
router = APIRouter()


def _runtime(request: Request) -> Runtime:
    """The runtime of the app that received the request.

    Read from the request rather than injected with ``Depends``: resolving a
    dependency costs FastAPI about 25 us per request, a sixth of a small model's whole
    prediction on one core.
    """
    runtime: Runtime = request.app.state.runtime
    return runtime


_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (413, 422, 500, 503)
}


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(request: Request) -> JSONResponse:
    """Liveness: 200 while starting or ready, 503 once the model failed to load."""
    runtime = _runtime(request)
    body = HealthResponse(
        status="ok" if runtime.state is not ServiceState.FAILED else "failed",
        state=runtime.state.value,
        error=runtime.error,
    )
    code = 503 if runtime.state is ServiceState.FAILED else 200
    return JSONResponse(body.model_dump(), status_code=code)


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 only when the model is ready; the database state is reported."""
    runtime = _runtime(request)
    is_ready = runtime.state is ServiceState.READY
    body = ReadyResponse(
        ready=is_ready,
        state=runtime.state.value,
        db=runtime.db.state.value,
        db_error=runtime.db.last_error,
        error=runtime.error,
    )
    return JSONResponse(body.model_dump(), status_code=200 if is_ready else 503)


def _require_model(runtime: Runtime) -> LoadedModel:
    if runtime.state is not ServiceState.READY or runtime.model is None:
        detail = f"the model is not ready (state: {runtime.state.value})"
        raise HTTPException(503, detail, headers={"Retry-After": "1"})
    return runtime.model


@router.get("/model", response_model=ModelResponse, responses={503: {"model": ErrorResponse}})
async def model_info(request: Request) -> ModelResponse:
    """Name, version, checksum, format, device and shapes of the served model."""
    runtime = _runtime(request)
    model = _require_model(runtime)
    return ModelResponse(
        **model.meta.as_dict(),
        max_items_per_request=runtime.settings.items_limit,
        batching=runtime.settings.batching_enabled,
    )


@router.post("/predict", response_model=PredictResponse, responses=_ERRORS)
async def predict(body: PredictRequest, request: Request) -> Response:
    """Predict a batch of items; 4xx says exactly what is wrong with the input."""
    runtime = _runtime(request)
    start = time.perf_counter()
    request_id: str = request.scope["state"]["request_id"]
    model = _require_model(runtime)
    try:
        batch = model.prepare(body.inputs, runtime.settings.items_limit)
    except InputError as exc:
        raise HTTPException(exc.status_code, str(exc)) from None
    runner = runtime.runner
    if runner is None:  # pragma: no cover - READY implies a runner
        raise HTTPException(503, "the model is not ready")
    # Digest of the exact bytes the model sees (any dtype, bfloat16 included).
    digest = hashlib.sha256(batch.contiguous().view(torch.uint8).numpy().data).hexdigest()
    # No longer on its way: from here it is in the batch queue (see batching.Arrivals).
    runtime.arrivals.leave(request.scope["state"])
    try:
        out = await runner.predict(batch)
    except OverloadedError as exc:
        raise HTTPException(503, f"server busy: {exc}", headers={"Retry-After": "1"}) from None
    except StoppedError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None
    except Exception as exc:
        log.exception("inference failed")
        _log_row(runtime, model, request_id, len(batch), start, "error", digest, None)
        raise HTTPException(500, f"inference failed: {_last_line(exc)}") from None
    outputs_text = outputs_json(out.tolist())
    runtime.metrics.items.inc(len(batch))
    _log_row(runtime, model, request_id, len(batch), start, "ok", digest, outputs_text)
    # The body is written here, once: the same JSON text goes to the client and to the
    # prediction log, and FastAPI does not validate and serialize it a second time
    # (a returned Response skips response_model, which still documents the shape).
    content = "".join(
        (
            '{"outputs":',
            outputs_text,
            ',"model_version":',
            json.dumps(model.meta.version),
            ',"request_id":',
            json.dumps(request_id),
            "}",
        )
    )
    return Response(content, media_type="application/json")


def outputs_json(outputs: list[Any]) -> str:
    """Compact JSON of the model's outputs; NaN and infinity become ``null``.

    JSON has no NaN or infinity, and Python's ``json`` would write them as bare
    ``NaN``/``Infinity`` tokens that strict parsers reject.
    """
    try:
        return json.dumps(outputs, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite_or_none(outputs), separators=(",", ":"))


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _last_line(exc: BaseException) -> str:
    """The gist of an error: TorchScript puts the model's own message on the last line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200]


def _log_row(
    runtime: Runtime,
    model: LoadedModel,
    request_id: str,
    n_items: int,
    start: float,
    status: str,
    digest: str,
    outputs: str | None,
) -> None:
    """Queue one prediction log row (``outputs`` as JSON text); never blocks, never raises."""
    if not runtime.settings.db_enabled:
        return
    stored = outputs
    if stored is not None and len(stored) > runtime.settings.db_outputs_max_bytes:
        stored = None
    runtime.db.submit(
        PredictionRecord(
            request_id=request_id,
            created_at=datetime.now(UTC).replace(tzinfo=None),
            model_name=model.meta.name[:128],
            model_version=model.meta.version[:64],
            n_items=n_items,
            latency_ms=round((time.perf_counter() - start) * 1000, 3),
            status=status,
            input_sha256=digest,
            outputs=stored,
        )
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    runtime = _runtime(request)
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
