{%- set pkg = cookiecutter.package_name -%}
{%- set image = cookiecutter.task == "image-classification" -%}
"""Shared fixtures: the demo model made by the project's own script, a running app, items.

The item helpers are the only task-specific part: ``item(n)`` gives distinct valid
items as JSON, ``poison()`` an item that a test handler makes the model fail on.
"""

from __future__ import annotations

import asyncio
{%- if image %}
import base64
{%- endif %}
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from {{ pkg }}.app import create_app
from {{ pkg }}.handler_base import (
    BaseHandler,
)
{%- if image %}
from {{ pkg }}.images import png
{%- endif %}
from {{ pkg }}.settings import Settings
from {{ pkg }}.state import (
    Runtime,
    ServiceState,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
#: The service's package (python -m PACKAGE runs it).
PACKAGE = {{ pkg | json_str }}
SCRIPTS = PROJECT_DIR / "scripts"
MODEL_FILE = {{ (cookiecutter.model_format | model_file) | json_str }}
#: The demo model's name, as it reports it.
DEMO_NAME = {{ ("demo-cnn-small" if image else "demo-mlp-small") | json_str }}


def make_model(out: Path, *extra: str) -> str:
    """Run scripts/make_demo_model.py; return the sha256 it prints."""
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "make_demo_model.py"), "--out", str(out), *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()
{%- if image %}


def item(n: int = 0) -> dict[str, Any]:
    """A valid item: a small PNG whose colour depends on ``n`` (distinct for n < 4096)."""
    colour = (n % 16 * 16, n // 16 % 16 * 16, n // 256 % 16 * 16)
    return {"image": base64.b64encode(png(40, 30, colour)).decode("ascii")}


def poison() -> dict[str, Any]:
    """An item that :class:`Picky` makes the model fail on: a pure white image."""
    return {"image": base64.b64encode(png(40, 30, (255, 255, 255))).decode("ascii")}


def is_poison(value: Any) -> bool:
    """Whether a validated ``Input`` is the poison item."""
    return bool(value.image == png(40, 30, (255, 255, 255)))
{%- else %}


def item(n: int = 0) -> list[float]:
    """A valid item of the demo model (shape [4]), distinct for every ``n``."""
    return [float(n), 0.5 * n - 1.0, 2.0 - n / 7, 0.25]


def poison() -> list[float]:
    """An item that :class:`Picky` makes the model fail on."""
    return [-1000.0, 0.0, 0.0, 0.0]


def is_poison(value: Any) -> bool:
    """Whether a validated ``Input`` is the poison item."""
    return bool(value.root[0] == -1000.0)
{%- endif %}


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Path and sha256 of the small demo model."""
    path = tmp_path_factory.mktemp("model") / MODEL_FILE
    return path, make_model(path)


@pytest.fixture
def settings_factory(demo_model: tuple[Path, str]) -> Callable[..., Settings]:
    """Settings for tests: the demo model, no database, overrides as keywords."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_path": demo_model[0],
            "model_sha256": demo_model[1],
            "db_enabled": False,
            "log_json": False,
            "torch_threads": 1,
            # The tests are about the service's logic; they run on any machine.
            "device": "cpu",
        }
        values.update(overrides)
        return Settings(**values)

    return build


async def wait_for(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Wait until ``condition()`` holds (checked every 10 ms), at most ``within`` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - a condition, not an event
            await asyncio.sleep(0.01)


@asynccontextmanager
async def serve(
    settings: Settings, handler: BaseHandler[Any, Any] | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Run the app's lifespan, wait for the model load to end, yield a client."""
    app = create_app(settings, handler)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        await wait_for(lambda: runtime.state is not ServiceState.STARTING, within=60)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield app, client
