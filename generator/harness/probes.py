"""Smoke probes against a running stack: predict, a malformed request, the MySQL row.

HTTP goes only to the app's port on 127.0.0.1; the database is read from inside its own
container with the MySQL client and the root password from the compose secret.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from generator.errors import SmokeFailed
from generator.harness import loopback, proc

#: Request ids are interpolated into SQL, so only these characters are accepted.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def post_json(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """POST raw bytes as JSON; return status and body (HTTP errors included)."""
    try:
        return loopback.request(url, body, timeout=timeout)
    except loopback.NoAnswer as exc:
        raise SmokeFailed(f"POST {url} got no answer ({exc.reason})") from None


def count_inputs(body: Any) -> int | None:
    """How many inputs a predict request carries: the length of its ``inputs`` list."""
    if isinstance(body, dict):
        inputs = body.get("inputs")
        if isinstance(inputs, list):
            return len(inputs)
    return None


def predict(base_url: str, sample: Path) -> dict[str, Any]:
    """POST the project's sample request; expect 200 and one output per input."""
    raw = sample.read_bytes()
    expected = count_inputs(json.loads(raw))
    begin = time.monotonic()
    status, body = post_json(base_url + "/predict", raw)
    seconds = time.monotonic() - begin
    if status != 200:
        raise SmokeFailed(f"POST /predict answered {status}: {body[:200]!r}")
    try:
        answer = json.loads(body)
    except ValueError:
        raise SmokeFailed("POST /predict did not answer JSON") from None
    outputs = answer.get("outputs") if isinstance(answer, dict) else None
    if not isinstance(outputs, list):
        raise SmokeFailed("POST /predict answer has no `outputs` list")
    if expected is not None and len(outputs) != expected:
        raise SmokeFailed(f"POST /predict gave {len(outputs)} outputs for {expected} inputs")
    request_id = answer.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise SmokeFailed("POST /predict answer has no `request_id`")
    return {
        "status": status,
        "outputs": len(outputs),
        "latency_ms": round(seconds * 1000, 1),
        "request_id": request_id,
        "model_version": answer.get("model_version"),
    }


#: Bodies the service must refuse with a 4xx: broken JSON and the wrong shape.
MALFORMED = {
    "broken_json": b'{"inputs": [',
    "wrong_type": b'{"inputs": "not a list"}',
}


def malformed(base_url: str) -> dict[str, Any]:
    """Each malformed body must get a client error (4xx), never a 200 or a 5xx."""
    figures: dict[str, Any] = {}
    for name, body in MALFORMED.items():
        status, _ = post_json(base_url + "/predict", body)
        figures[name] = status
        if not 400 <= status < 500:
            raise SmokeFailed(f"a malformed /predict request ({name}) got {status}, not a 4xx")
    return figures


def prediction_row(
    db_container: Any, db_name: str, request_id: str, within: float = 15.0
) -> dict[str, Any]:
    """Find the prediction's row in MySQL; logging is asynchronous, so retry a while."""
    if not _SAFE_ID.match(request_id):
        raise SmokeFailed(f"request id {request_id!r} has unexpected characters")
    if not _DB_NAME.match(db_name):
        raise SmokeFailed(f"database name {db_name!r} has unexpected characters")
    query = f"SELECT COUNT(*) FROM predictions WHERE request_id = '{request_id}'"  # noqa: S608
    # The password comes from the secret file inside the container, never our argv; MYSQL_PWD
    # keeps it off the client's command line too.
    script = (
        'MYSQL_PWD="$(cat /run/secrets/db_root_password)" '
        f'exec mysql -uroot --batch --skip-column-names {db_name} -e "{query}"'
    )
    begin = time.monotonic()
    while True:
        code, output = db_container.exec_run(["sh", "-c", script], demux=False)
        last = proc.last_line((output or b"").decode("utf-8", "replace"), f"mysql exited {code}")
        if code == 0 and last.isdigit():
            if int(last) >= 1:
                return {"rows": int(last), "seconds": round(time.monotonic() - begin, 1)}
            last = "no row yet"
        if time.monotonic() - begin > within:
            raise SmokeFailed(
                f"no row for request {request_id} in {db_name}.predictions "
                f"after {within:.0f} s ({last})"
            )
        time.sleep(1.0)
