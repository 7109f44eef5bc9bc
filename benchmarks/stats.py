"""Small statistics and ratio helpers shared by every benchmark section.

Kept dependency-free so the load generator (a separate process) and the smoke tests can
import them without the Docker SDK or the harness.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

#: The median, as the standard library computes it (the mean of the two middle values
#: of an even count, which is also the 50th percentile of :func:`percentile`).
median = statistics.median


def percentile(values: Sequence[float], q: int) -> float:
    """Return the ``q``-th percentile (1-99) of ``values``, interpolated between ranks.

    ``statistics.quantiles`` with ``method="inclusive"`` is linear interpolation between
    the closest ranks, the default of numpy and of most load-testing tools, so p50/p99
    here compare with figures people already know (its "exclusive" default would
    extrapolate beyond the slowest request for p99 of a small sample).
    Ref: https://docs.python.org/3/library/statistics.html#statistics.quantiles
    """
    if not 1 <= q <= 99:
        raise ValueError(f"percentile must be within 1..99, got {q}")
    if not values:
        raise ValueError("percentile of an empty sequence")
    if len(values) == 1:  # quantiles() needs two points before Python 3.13
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def ratio(value: float | None, baseline: float | None) -> float | None:
    """Return ``value / baseline``, or ``None`` when either is missing or the baseline is 0."""
    if value is None or baseline is None:
        return None
    if baseline == 0:
        return None
    return value / baseline


def fmt_ratio(r: float | None) -> str:
    """Format a ratio as ``0.42x``; an em dash when it cannot be computed."""
    if r is None:
        return "—"
    if r >= 100:
        return f"{r:.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    return f"{r:.2f}x"


def fmt_bytes(n: float | None) -> str:
    """Format a byte count with binary units (``1.2 GiB``), or an em dash."""
    if n is None:
        return "—"
    sign = "-" if n < 0 else ""
    n = abs(float(n))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            if unit == "B":
                return f"{sign}{n:.0f} {unit}"
            return f"{sign}{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def fmt_seconds(s: float | None) -> str:
    """Format seconds with a precision that suits the magnitude, or an em dash."""
    if s is None:
        return "—"
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.2f} s"
    return f"{s:.1f} s"


def meets(r: float | None, op: str, bound: float) -> bool | None:
    """Tell whether ratio or figure ``r`` satisfies ``op bound`` (``<=`` or ``>=``)."""
    if r is None:
        return None
    if op == "<=":
        return r <= bound
    if op == ">=":
        return r >= bound
    raise ValueError(f"unknown comparison {op!r}")
