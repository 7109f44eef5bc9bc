"""Smoke probes against a running stack: predict, a malformed request, the MySQL row.

HTTP goes only to the app's port on 127.0.0.1; the database is read from inside its own
container with the MySQL client and the root password from the compose secret.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from generator.errors import SmokeFailed
from generator.harness import loopback, proc

#: Request ids are interpolated into SQL, so only these characters are accepted.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def post_json(
    url: str, body: bytes, timeout: float = 30.0, content_type: str = "application/json"
) -> tuple[int, bytes]:
    """POST raw bytes (JSON by default); return status and body (HTTP errors included)."""
    try:
        return loopback.request(url, body, timeout=timeout, content_type=content_type)
    except loopback.NoAnswer as exc:
        raise SmokeFailed(f"POST {url} got no answer ({exc.reason})") from None


def count_inputs(body: Any) -> int | None:
    """How many inputs a predict request carries: the length of its ``inputs`` list."""
    if isinstance(body, dict):
        inputs = body.get("inputs")
        if isinstance(inputs, list):
            return len(inputs)
    return None


def describe_model(base_url: str) -> dict[str, Any]:
    """``GET /model``: what the service says it serves (checked against its outputs)."""
    try:
        status, body = loopback.request(base_url + "/model", timeout=10.0)
    except loopback.NoAnswer as exc:
        raise SmokeFailed(f"GET /model got no answer ({exc.reason})") from None
    try:
        model = json.loads(body) if status == 200 else None
    except ValueError:
        model = None
    if not isinstance(model, dict):
        raise SmokeFailed(f"GET /model answered {status}: {body[:200]!r}")
    return model


def shape_of(value: Any) -> list[int] | None:
    """Return the shape of nested lists of numbers (nulls allowed); None when ragged."""
    if not isinstance(value, list):
        return [] if value is None or isinstance(value, int | float) else None
    if not value:
        return [0]
    shapes = [shape_of(entry) for entry in value]
    first = shapes[0]
    if first is None or any(shape != first for shape in shapes):
        return None
    return [len(value), *first]


def check_output(output: Any, model: dict[str, Any]) -> str:
    """Raise SmokeFailed unless ``output`` fits the model; return what was checked.

    A classifier's output (``model["labels"]`` set) is ``{"labels": [{label, score}]}``
    with known labels and scores from 0 to 1, best first; a tensor model's output has
    the model's output shape.
    """
    labels = model.get("labels")
    if isinstance(labels, list):
        ranked = output.get("labels") if isinstance(output, dict) else None
        if not isinstance(ranked, list) or not ranked:
            raise SmokeFailed(f"a /predict output has no labels: {str(output)[:200]}")
        scores = []
        for entry in ranked:
            label = entry.get("label") if isinstance(entry, dict) else None
            score = entry.get("score") if isinstance(entry, dict) else None
            if label not in labels:
                raise SmokeFailed(f"/predict answered the label {label!r}, not one of the model's")
            if not isinstance(score, int | float) or not 0 <= score <= 1:
                raise SmokeFailed(f"/predict answered the score {score!r} for {label!r}")
            scores.append(score)
        if scores != sorted(scores, reverse=True):
            raise SmokeFailed("/predict answered labels that are not best first")
        return f"top {len(ranked)} of {len(labels)} labels"
    expected = [int(n) for n in model.get("output_shape") or []]
    got = shape_of(output)
    if got != expected:
        raise SmokeFailed(f"a /predict output has shape {got}, the model declares {expected}")
    return f"shape {expected}"


def _multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """Return a multipart/form-data body with one file (as ``curl -F field=@file``) and its type."""
    boundary = f"servegen-{secrets.token_hex(12)}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def predict(base_url: str, sample: Path, upload: Path | None = None) -> dict[str, Any]:
    """POST the project's sample request; expect 200 and outputs that fit ``GET /model``.

    With ``upload`` (an image), it is also sent as a multipart upload, and its answer
    must equal the sample's first one (the sample holds the same image).
    """
    model = describe_model(base_url)
    raw = sample.read_bytes()
    expected = count_inputs(json.loads(raw))
    begin = time.monotonic()
    status, body = post_json(base_url + "/predict", raw)
    seconds = time.monotonic() - begin
    answer = _answer(status, body)
    outputs = answer["outputs"]
    if expected is not None and len(outputs) != expected:
        raise SmokeFailed(f"POST /predict gave {len(outputs)} outputs for {expected} inputs")
    checked = {check_output(output, model) for output in outputs}
    figures = {
        "status": status,
        "outputs": len(outputs),
        "checked": ", ".join(sorted(checked)),
        "latency_ms": round(seconds * 1000, 1),
        "request_id": answer["request_id"],
        "model_version": answer.get("model_version"),
        "model": model.get("name"),
    }
    if upload is not None:
        form, content_type = _multipart("image", upload.name, upload.read_bytes())
        uploaded = _answer(*post_json(base_url + "/predict", form, content_type=content_type))
        if uploaded["outputs"] != outputs[:1]:
            raise SmokeFailed("the upload of the sample image got another answer than its JSON")
        figures["upload_status"] = 200
    return figures


def _answer(status: int, body: bytes) -> dict[str, Any]:
    """Return the JSON of a /predict answer: a 200 with outputs and a request id, or raise."""
    if status != 200:
        raise SmokeFailed(f"POST /predict answered {status}: {body[:200]!r}")
    try:
        answer = json.loads(body)
    except ValueError:
        raise SmokeFailed("POST /predict did not answer JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("outputs"), list):
        raise SmokeFailed("POST /predict answer has no `outputs` list")
    request_id = answer.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise SmokeFailed("POST /predict answer has no `request_id`")
    return answer


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


def _mysql(db_container: Any, db_name: str, query: str) -> tuple[bool, str]:
    """Run one query with the ``mysql`` client inside the db container; (ok, last line).

    The password comes from the secret file inside the container, never our argv;
    MYSQL_PWD keeps it off the client's command line too.
    """
    if not _DB_NAME.match(db_name):
        raise SmokeFailed(f"database name {db_name!r} has unexpected characters")
    script = (
        'MYSQL_PWD="$(cat /run/secrets/db_root_password)" '
        f'exec mysql -uroot --batch --skip-column-names {db_name} -e "{query}"'
    )
    code, output = db_container.exec_run(["sh", "-c", script], demux=False)
    last = proc.last_line((output or b"").decode("utf-8", "replace"), f"mysql exited {code}")
    return code == 0, last


def _checked_ids(request_ids: list[str]) -> list[str]:
    """Return the ids, or raise: they are interpolated into SQL, so only safe ones pass."""
    for request_id in request_ids:
        if not _SAFE_ID.match(request_id):
            raise SmokeFailed(f"request id {request_id!r} has unexpected characters")
    return request_ids


def prediction_row(
    db_container: Any, db_name: str, request_id: str, within: float = 15.0
) -> dict[str, Any]:
    """Find the prediction's row in MySQL; logging is asynchronous, so retry a while."""
    _checked_ids([request_id])
    query = f"SELECT COUNT(*) FROM predictions WHERE request_id = '{request_id}'"  # noqa: S608
    begin = time.monotonic()
    while True:
        ok, last = _mysql(db_container, db_name, query)
        if ok and last.isdigit():
            if int(last) >= 1:
                return {"rows": int(last), "seconds": round(time.monotonic() - begin, 1)}
            last = "no row yet"
        if time.monotonic() - begin > within:
            raise SmokeFailed(
                f"no row for request {request_id} in {db_name}.predictions "
                f"after {within:.0f} s ({last})"
            )
        time.sleep(1.0)


#: Ids per query when many are counted (keeps each command line far below its limit).
_IDS_PER_QUERY = 200


def logged_ids(db_container: Any, db_name: str, request_ids: list[str]) -> int:
    """Return how many of ``request_ids`` have a row in ``predictions`` (one read, no retry).

    Raises SmokeFailed when the database cannot be read.
    """
    found = 0
    ids = _checked_ids(list(dict.fromkeys(request_ids)))
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ", ".join(f"'{i}'" for i in ids[start : start + _IDS_PER_QUERY])
        where = f"request_id IN ({chunk})"
        query = f"SELECT COUNT(DISTINCT request_id) FROM predictions WHERE {where}"  # noqa: S608
        ok, last = _mysql(db_container, db_name, query)
        if not (ok and last.isdigit()):
            raise SmokeFailed(f"cannot read {db_name}.predictions ({last})")
        found += int(last)
    return found
