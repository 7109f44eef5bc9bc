"""Run the service: ``python -m {{ cookiecutter.package_name }}``.

uvicorn handles SIGTERM and SIGINT: it stops accepting connections, lets requests in
flight finish (up to GRACEFUL_SHUTDOWN_S), then runs the lifespan shutdown, which
drains the batch queue and flushes the prediction log.
Ref: https://www.uvicorn.org/deployment/#running-programmatically
"""

from __future__ import annotations

import sys

import uvicorn

from .logs import configure_logging
from .settings import SettingsError, load_settings


def main() -> int:
    """Start uvicorn with the settings from the environment; return the exit code."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json_lines=settings.log_json)
    uvicorn.run(
        # An import string: each worker process (WORKERS > 1) builds its own app, and
        # main.py configures the JSON logging before uvicorn starts serving.
        "{{ cookiecutter.package_name }}.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
