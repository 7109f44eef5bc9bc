"""ASGI entry point: ``uvicorn {{ cookiecutter.package_name }}.main:app``."""

from __future__ import annotations

import sys

from .app import create_app
from .logs import configure_logging
from .settings import SettingsError, load_settings

try:
    settings = load_settings()
except SettingsError as exc:
    # One clear line and a non-zero exit instead of a traceback from the ASGI server.
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

configure_logging(settings.log_level, json_lines=settings.log_json)
app = create_app(settings)
