"""Build the app image with BuildKit (through ``compose build``) and measure it.

The Docker SDK drives only the legacy builder, which rejects ``RUN --mount``; Compose v2
builds with BuildKit, so the build goes through it and the SDK only inspects the result.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, TextIO

from generator.errors import BuildFailed
from generator.harness import proc
from generator.harness.compose import ComposeRun
from generator.harness.overlay import APP


def build(compose: ComposeRun, out: TextIO | None = None) -> tuple[dict[str, Any], list[str]]:
    """Build the app service; return figures and the full build log.

    A person at a terminal sees one live status line; elsewhere every line is printed.
    """
    out = out if out is not None else sys.stderr
    status = proc.StatusLine("building", out)
    begin = time.monotonic()
    try:
        # Plain progress is what we parse and keep; the live line is drawn from it.
        result = compose.run("build", APP, on_line=status, progress="plain")
    finally:
        status.close()
    seconds = time.monotonic() - begin
    if not result.ok:
        raise BuildFailed(
            f"the image build failed: {build_error(result.lines)}",
            log_tail=result.lines,
            log_source="the build",
        )
    return {"build_seconds": round(seconds, 1)}, result.lines


def build_error(lines: list[str], limit: int = 200) -> str:
    """Return the line of a build log that says best why it failed, shortened.

    A tool's own error inside a step (pip's "No matching distribution") says more than
    BuildKit's generic "process ... did not complete", which says more than nothing.
    """
    generic = re.compile(r"^#\d+ ERROR: process .* did not complete")
    own = [line for line in lines if "ERROR:" in line and not generic.match(line.strip())]
    buildkit = [line for line in lines if "failed to solve" in line or "ERROR:" in line]
    text = proc.last_line(own, "") or proc.last_line(buildkit, "") or proc.last_line(lines)
    text = re.sub(r"^#\d+ (\d+\.\d+ )?", "", text)  # BuildKit's step and time prefix
    return text if len(text) <= limit else text[: limit - 3] + "..."


def measure(client: Any, image: str, base_image: str | None) -> dict[str, Any]:
    """Size, layer count and the bytes the build added above the base image."""
    built = client.images.get(image)
    layers = list(built.attrs.get("RootFS", {}).get("Layers") or [])
    figures: dict[str, Any] = {
        "image": image,
        "image_id": str(built.id),
        "image_size_bytes": int(built.attrs.get("Size") or 0),
        "layers": len(layers),
        "base_image": base_image,
        "added_bytes": None,
        "added_layers": None,
    }
    if not base_image:
        return figures
    try:
        base = client.images.get(base_image)
    except Exception:  # base not local (pulled by digest, or removed): no comparison
        return figures
    base_layers = list(base.attrs.get("RootFS", {}).get("Layers") or [])
    # The runtime stage starts FROM the base, so its layers are a prefix of the image's;
    # the image's total size minus the base's is then exactly what the build added.
    if layers[: len(base_layers)] == base_layers:
        figures["added_bytes"] = figures["image_size_bytes"] - int(base.attrs.get("Size") or 0)
        figures["added_layers"] = len(layers) - len(base_layers)
    return figures
