"""Read the service's ``GET /metrics``: Prometheus text exposition to name -> value.

The drills compare a few of the service's own counters and gauges before, during and
after a fault (``db_up``, ``db_write_failures_total``, ...). Only what they need is
parsed: one sample per line, ``name{labels} value [timestamp]``; ``#`` lines are
comments (HELP, TYPE). A sample with labels is kept under its whole series name, as
written (``http_requests_total{method="GET",...}``), one without under its bare name.
Ref: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
"""

from __future__ import annotations

import re

from generator.errors import SmokeFailed
from generator.harness import loopback

# A series name (with its optional label set, which may hold spaces inside quotes),
# then the value; an optional timestamp may follow.
_SAMPLE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*(?:\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?)\s+(\S+)')


def parse(text: str) -> dict[str, float]:
    """Return every sample of an exposition text, by series name.

    Lines that are not samples (comments, blanks, anything malformed) are skipped, so a
    service that adds its own lines never breaks the reading of the ones we know.
    """
    samples: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match[2])  # also "NaN", "+Inf", "-Inf"
        except ValueError:
            continue
        samples[match[1]] = value
    return samples


def scrape(base_url: str, timeout: float = 5.0) -> dict[str, float]:
    """``GET /metrics`` of the app and parse it; raise SmokeFailed when it cannot."""
    try:
        status, body = loopback.request(base_url + "/metrics", timeout=timeout)
    except loopback.NoAnswer as exc:
        raise SmokeFailed(f"GET /metrics got no answer ({exc.reason})") from None
    if status != 200:
        raise SmokeFailed(f"GET /metrics answered {status}")
    return parse(body.decode("utf-8", "replace"))
