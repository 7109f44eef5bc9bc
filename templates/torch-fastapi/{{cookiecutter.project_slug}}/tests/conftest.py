"""Shared fixtures: a demo model made by the project's own script, and a running app."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.state import Runtime

PROJECT_DIR = Path(__file__).resolve().parent.parent
SCRIPTS = PROJECT_DIR / "scripts"


def make_model(out: Path, *extra: str) -> str:
    """Run scripts/make_demo_model.py; return the sha256 it prints."""
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "make_demo_model.py"), "--out", str(out), *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Path and sha256 of the small demo model."""
    path = tmp_path_factory.mktemp("model") / "model.pt"
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


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Run the app's lifespan, wait for the model load to end, yield a client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        await runtime.loaded.wait()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield app, client
