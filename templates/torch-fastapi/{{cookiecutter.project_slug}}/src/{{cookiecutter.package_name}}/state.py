"""The service's runtime state, shared by the lifespan and the routes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum

from .batching import Arrivals, InferenceRunner
from .db import PredictionLog
from .metrics import Metrics
from .model import LoadedModel
from .settings import Settings


class ServiceState(StrEnum):
    """Where the service is in its life: a failed load never looks ready."""

    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"


@dataclass
class Runtime:
    """Everything a request needs, owned by one app instance."""

    settings: Settings
    metrics: Metrics
    db: PredictionLog
    state: ServiceState = ServiceState.STARTING
    error: str | None = None
    model: LoadedModel | None = None
    runner: InferenceRunner | None = None
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    arrivals: Arrivals = field(default_factory=Arrivals)

    def fail(self, message: str) -> None:
        """Enter FAILED with the reason shown by /health and /ready."""
        self.state = ServiceState.FAILED
        self.error = message
        self.metrics.model_ready.set(0)
        self.loaded.set()
