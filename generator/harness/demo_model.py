"""The demo model's checksum, learned from the built image before the stack starts.

The image's own ``scripts/make_demo_model.py`` runs once in a throw-away container (no
network, labelled with the run) and prints the sha256 of the model it wrote. The maker
is deterministic, so the overlay's ``model-server`` later serves the same bytes, and the
downloader verifies them against this checksum.
"""

from __future__ import annotations

import re
from typing import Any

from generator.errors import SmokeFailed
from generator.harness.overlay import RUN_LABEL
from generator.harness.report import LOG_TAIL_LINES

_SHA256 = re.compile(r"\b[0-9a-f]{64}\b")
MAKER = "make_demo_model.py"


def demo_model_sha256(client: Any, image: str, run_id: str) -> str:
    """Make the demo model once in a throw-away container and return its sha256."""
    try:
        output = client.containers.run(
            image,
            ["scripts/make_demo_model.py", "--out", "/tmp/model.pt"],  # noqa: S108
            entrypoint=["python"],
            remove=True,
            network_disabled=True,
            labels={RUN_LABEL: run_id},
            stdout=True,
            stderr=False,  # the checksum is alone on stdout; the summary goes to stderr
        )
    except Exception as exc:
        raise SmokeFailed(
            "scripts/make_demo_model.py failed in the built image",
            log_tail=_error_lines(exc),
            log_source=MAKER,
        ) from None
    text = output.decode("utf-8", "replace")
    found = _SHA256.findall(text)
    if not found:
        raise SmokeFailed(
            "scripts/make_demo_model.py printed no sha256",
            log_tail=text.splitlines()[-LOG_TAIL_LINES:],
            log_source=MAKER,
        )
    return str(found[-1])


def _error_lines(exc: Exception) -> list[str]:
    """Return the stderr that came with a failed container run, else the error itself."""
    stderr = getattr(exc, "stderr", None)
    if isinstance(stderr, bytes) and stderr:
        return stderr.decode("utf-8", "replace").splitlines()[-LOG_TAIL_LINES:]
    return [str(exc)]
