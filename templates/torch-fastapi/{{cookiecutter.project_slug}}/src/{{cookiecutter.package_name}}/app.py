"""The app factory and its lifespan: wiring only, the work lives in other modules."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from . import __version__
from .batching import InferenceRunner
from .db import PredictionLog
from .metrics import Metrics
from .middleware import RequestMiddleware
from .model import ModelLoadError, load_model
from .routes import router
from .settings import Settings, load_settings
from .state import Runtime, ServiceState

log = logging.getLogger(__name__)

# Free text from the project's answers lives in JSON, read at import: no answer can
# change Python code, and the source stays formatter-stable whatever the text holds.
_ABOUT = json.loads((Path(__file__).parent / "about.json").read_text(encoding="utf-8"))
TITLE: str = _ABOUT["title"]
DESCRIPTION: str = _ABOUT["description"]


async def _load(runtime: Runtime) -> None:
    """Load and warm the model on a thread, then open for predictions."""
    settings = runtime.settings
    try:
        model = await asyncio.to_thread(load_model, settings)
    except ModelLoadError as exc:
        log.error("model failed to load", extra={"error": str(exc)})
        runtime.fail(str(exc))
        return
    except Exception as exc:  # an unexpected failure must still end in FAILED
        log.exception("model failed to load")
        runtime.fail(f"{type(exc).__name__}: {exc}")
        return
    runner = InferenceRunner(
        model.forward,
        runtime.metrics,
        batching=settings.batching_enabled,
        max_size=settings.batch_max_size,
        max_wait_s=settings.batch_max_wait_ms / 1000,
        queue_max=settings.batch_queue_max,
        arrivals=runtime.arrivals,
    )
    await runner.start()
    _freeze_heap()
    runtime.model = model
    runtime.runner = runner
    runtime.state = ServiceState.READY
    runtime.metrics.model_ready.set(1)
    runtime.metrics.model_info.info(
        {k: str(v) for k, v in model.meta.as_dict().items() if k in ("name", "version", "sha256")}
    )
    runtime.loaded.set()
    loop = type(asyncio.get_running_loop())
    log.info(
        "ready",
        extra={"batching": settings.batching_enabled, "event_loop": loop.__module__},
    )


def _freeze_heap() -> None:
    """Move every object alive after start-up out of the garbage collector's sight.

    Importing torch leaves a few hundred thousand long-lived objects, and each full
    (oldest-generation) collection walks all of them: under load that was a pause of
    about 100 ms every second or so, which set the p99 latency of every endpoint.
    Frozen objects are never scanned again; objects created later are collected as
    usual. Done once, before the service reports ready, so the pause of the final
    collection never lands on a request.
    Ref: https://docs.python.org/3/library/gc.html#gc.freeze
    """
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the log writer and the model load; on shutdown drain work, flush the log."""
    runtime: Runtime = app.state.runtime
    runtime.db.start()
    # Loading in the background lets /health answer (state "starting") during a long load.
    loader = asyncio.create_task(_load(runtime), name="model-loader")
    try:
        yield
    finally:
        if not loader.done():
            loader.cancel()
        if runtime.runner is not None:
            await runtime.runner.stop(timeout_s=runtime.settings.graceful_shutdown_s)
        await asyncio.to_thread(runtime.db.stop)
        log.info("stopped")


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    """One readable line instead of pydantic's error list."""
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registered for it
        raise exc
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return JSONResponse({"detail": "; ".join(problems[:5])}, status_code=422)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service. Settings default to the environment."""
    settings = settings or load_settings()
    metrics = Metrics()
    runtime = Runtime(settings=settings, metrics=metrics, db=PredictionLog(settings, metrics))
    app = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        arrivals=runtime.arrivals,
        access_log=settings.access_log,
    )
    return app
