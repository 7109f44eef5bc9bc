"""Results of one benchmark run and their rendering as markdown.

Every figure is a :class:`Row`: the value measured for servegen's output, the value of
the baseline measured in the same run, and optionally a target from the benchmarks
issue. Serving points are kept as the load generator's own dicts and get their own
table. The markdown written to ``docs/benchmarks.md`` is produced here and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stats import fmt_bytes, fmt_ratio, fmt_seconds, meets, ratio


@dataclass(frozen=True)
class Target:
    """A goal for one row: ``ratio <= 0.6`` or ``value <= 5`` and the like."""

    on: str  # "ratio" or "value"
    op: str  # "<=" or ">="
    bound: float

    def describe(self, unit: str) -> str:
        """Return the target as text for a table cell."""
        if self.on == "ratio":
            return f"{self.op} {self.bound:g}x"
        return f"{self.op} {format_value(self.bound, unit)}"


@dataclass
class Row:
    """One measured figure with its same-run baseline."""

    key: str
    section: str
    metric: str
    unit: str
    value: float | None = None
    baseline: float | None = None
    baseline_label: str = ""
    note: str = ""
    target: Target | None = None
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        """Value divided by baseline, when both exist."""
        return ratio(self.value, self.baseline)

    @property
    def met(self) -> bool | None:
        """Whether the target is met; ``None`` without a target or without figures."""
        if self.target is None:
            return None
        subject = self.ratio if self.target.on == "ratio" else self.value
        return meets(subject, self.target.op, self.target.bound)


@dataclass
class Results:
    """Everything one ``python -m benchmarks run`` measured."""

    command: str
    started_utc: str
    machine: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    serving: list[dict[str, Any]] = field(default_factory=list)
    breakdown: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    #: extra titled markdown sections (for example the layer ids before and after)
    tables: list[tuple[str, str]] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        """Append ``row`` and return it."""
        self.rows.append(row)
        return row

    def get(self, key: str) -> Row | None:
        """Return the row with ``key``, if any."""
        return next((r for r in self.rows if r.key == key), None)

    def to_json(self) -> str:
        """Serialise the results (for ``--json``)."""
        data = asdict(self)
        for raw, row in zip(data["rows"], self.rows, strict=True):
            raw["ratio"] = row.ratio
            raw["met"] = row.met
        return json.dumps(data, indent=2, sort_keys=True)


def format_value(value: float | None, unit: str) -> str:
    """Format ``value`` in ``unit`` for a table cell."""
    if value is None:
        return "—"
    if unit == "bytes":
        return fmt_bytes(value)
    if unit == "s":
        return fmt_seconds(value)
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "rps":
        return f"{value:,.0f} req/s"
    if unit == "count":
        return f"{value:g}"
    if unit == "pct":
        return f"{value:.2f} %"
    return str(value)


def _cell(text: str) -> str:
    """Escape a value for a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """Return a GitHub-flavoured markdown table."""
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    out.append("| " + " | ".join("---" for _ in headers) + " |")
    out.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(out)


def _met_text(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: ""}[met]


def rows_table(rows: list[Row]) -> str:
    """Return the figures-and-ratios table for ``rows``."""
    body = []
    for r in rows:
        if r.error:
            body.append([r.metric, f"failed: {r.error}", "", "", "", "", r.note])
            continue
        body.append(
            [
                r.metric,
                format_value(r.value, r.unit),
                format_value(r.baseline, r.unit)
                + (f" ({r.baseline_label})" if r.baseline_label else "")
                if r.baseline is not None
                else "—",
                fmt_ratio(r.ratio),
                r.target.describe(r.unit) if r.target else "",
                _met_text(r.met),
                r.note,
            ]
        )
    return markdown_table(
        ["measurement", "servegen", "baseline", "ratio", "target", "met", "note"], body
    )


def serving_table(points: list[dict[str, Any]]) -> str:
    """Return the serving table: one line per (model, batching, endpoint, clients)."""
    body = []
    for p in points:
        if p.get("error"):
            body.append(
                [
                    p["model"],
                    p["batching"],
                    p["endpoint"],
                    str(p["concurrency"]),
                    "failed",
                    "",
                    "",
                    "",
                    p["error"],
                ]
            )
            continue
        errors = p.get("errors", 0) + p.get("requests", 0) - p.get("ok", 0)
        body.append(
            [
                p["model"],
                p["batching"],
                p["endpoint"],
                str(p["concurrency"]),
                f"{p['throughput_rps']:,.0f}",
                f"{p['p50_ms']:.1f}" if p.get("p50_ms") is not None else "—",
                f"{p['p99_ms']:.1f}" if p.get("p99_ms") is not None else "—",
                str(p.get("ok", 0)),
                str(errors) if errors else "0",
            ]
        )
    return markdown_table(
        ["model", "batching", "endpoint", "clients", "req/s", "p50 ms", "p99 ms", "ok", "errors"],
        body,
    )


def targets_table(rows: list[Row]) -> str:
    """Return a summary of every row that carries a target."""
    body = []
    for r in rows:
        if r.target is None:
            continue
        subject = r.ratio if r.target.on == "ratio" else r.value
        shown = fmt_ratio(subject) if r.target.on == "ratio" else format_value(subject, r.unit)
        body.append(
            [
                f"{r.section}: {r.metric}",
                r.target.describe(r.unit),
                shown if not r.error else "failed",
                _met_text(r.met),
            ]
        )
    return markdown_table(["target", "wanted", "measured", "met"], body)


def breakdown_table(breakdown: dict[str, list[tuple[str, int]]], limit: int = 16) -> str:
    """Return the per-entry size table of the virtual environments, largest first.

    The rows are the ``limit`` entries that are largest in any of the images, then one
    row for everything else, then the total; an entry missing from an image (removed
    by the servegen build, say) shows as a dash.
    """
    labels = list(breakdown)
    sizes = {label: dict(items) for label, items in breakdown.items()}
    names = sorted(
        {name for items in breakdown.values() for name, _ in items},
        key=lambda n: -max(sizes[label].get(n, 0) for label in labels),
    )
    shown = names[:limit]
    body = [
        [n, *[fmt_bytes(sizes[label][n]) if n in sizes[label] else "—" for label in labels]]
        for n in shown
    ]
    rest = [sum(v for n, v in sizes[label].items() if n not in shown) for label in labels]
    body.append([f"everything else ({len(names) - len(shown)} entries)", *map(fmt_bytes, rest)])
    body.append(["total", *[fmt_bytes(sum(sizes[label].values())) for label in labels]])
    return markdown_table(["site-packages entry", *labels], body)


def render_markdown(results: Results) -> str:
    """Return the results section of ``docs/benchmarks.md`` (and of the console output)."""
    parts = [
        f"Run started {results.started_utc} with:",
        "",
        "```",
        results.command,
        "```",
        "",
    ]
    if results.machine:
        parts.append(markdown_table(["machine", ""], [[k, v] for k, v in results.machine.items()]))
        parts.append("")
    sections: list[str] = []
    for r in results.rows:
        if r.section not in sections:
            sections.append(r.section)
    if any(r.target for r in results.rows):
        parts += ["### Targets", "", targets_table(results.rows), ""]
    for section in sections:
        parts += [
            f"### {section}",
            "",
            rows_table([r for r in results.rows if r.section == section]),
            "",
        ]
    if results.serving:
        parts += [
            "### Serving: every load point (app in its container, load generator on the host)",
            "",
            serving_table(results.serving),
            "",
        ]
    if results.breakdown:
        parts += [
            "### Where the bytes go (virtual environment, per package)",
            "",
            breakdown_table(results.breakdown),
            "",
        ]
    for title, table in results.tables:
        parts += [f"### {title}", "", table, ""]
    if results.notes:
        parts += ["### Notes from this run", ""] + [f"- {n}" for n in results.notes] + [""]
    if results.failures:
        parts += ["### Sections that failed", ""] + [f"- {f}" for f in results.failures] + [""]
    return "\n".join(parts)


RESULTS_START = "<!-- benchmark results: written by `python -m benchmarks run`; start -->"
RESULTS_END = "<!-- benchmark results: end -->"


def write_doc(path: Path, results: Results) -> None:
    """Replace the results block of ``path`` (created from the template when missing).

    The prose around the block (method, caveats) is kept as written; only what lies
    between the two markers is replaced, and the file is replaced atomically.
    """
    block = f"{RESULTS_START}\n\n{render_markdown(results)}\n{RESULTS_END}"
    text = path.read_text(encoding="utf-8") if path.exists() else DOC_TEMPLATE
    start = text.find(RESULTS_START)
    end = text.find(RESULTS_END)
    if start == -1 or end == -1 or end < start:
        text = text.rstrip("\n") + "\n\n## Latest results\n\n" + block + "\n"
    else:
        text = text[:start] + block + text[end + len(RESULTS_END) :]
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


DOC_TEMPLATE = f"""# Benchmarks

See benchmarks/README.md for the method.

## Latest results

{RESULTS_START}
{RESULTS_END}
"""
