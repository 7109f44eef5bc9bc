"""Container health check: exit 0 when GET /health (or /ready) on this host answers 200.

Standard library only and no package imports, so it is fast and works even when the
service's dependencies are broken: ``python -m {{ cookiecutter.package_name }}.healthcheck``
probes liveness (the image's HEALTHCHECK); with ``--ready`` it probes readiness (compose's
health check, which gates "model loaded", not only "process up").
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = {{ cookiecutter.api_port | int }}


def main(argv: list[str] | None = None) -> int:
    """Probe the local /health endpoint (/ready with ``--ready``); 0 healthy, 1 not."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--ready"]):
        print("usage: python -m {{ cookiecutter.package_name }}.healthcheck [--ready]", file=sys.stderr)
        return 2
    path = "/ready" if args else "/health"
    port = os.environ.get("PORT", str(DEFAULT_PORT))
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            ok = response.status == 200
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if not ok:
        print(f"unhealthy: {url} answered {response.status}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
