"""Tear-down: ``compose down``, remove the run's image, then prove nothing is left.

``down --volumes --remove-orphans`` does the bulk; a sweep through the SDK then removes
any container, network, volume or image that still carries the run's label (a compose
call that was interrupted, the throw-away containers of the demo model), and a final
look-up verifies that none remains.
"""

from __future__ import annotations

from typing import Any

from generator.harness.compose import ComposeRun
from generator.harness.overlay import RUN_LABEL


def leftovers(client: Any, run_id: str, compose_name: str) -> dict[str, list[Any]]:
    """Everything on the engine that belongs to the run, by kind."""
    found: dict[str, dict[str, Any]] = {"containers": {}, "networks": {}, "volumes": {}}
    for label in (f"{RUN_LABEL}={run_id}", f"com.docker.compose.project={compose_name}"):
        filters = {"label": label}
        for item in client.containers.list(all=True, filters=filters):
            found["containers"][item.id] = item
        for item in client.networks.list(filters=filters):
            found["networks"][item.id] = item
        for item in client.volumes.list(filters=filters):
            found["volumes"][item.id] = item
    return {kind: list(items.values()) for kind, items in found.items()}


def run_images(client: Any, run_id: str, app_image: str) -> list[Any]:
    """Images the run built: its unique tag, and anything else with its label."""
    images: dict[str, Any] = {}
    try:
        image = client.images.get(app_image)
        images[image.id] = image
    except Exception:  # noqa: S110 - already gone, nothing to remove
        pass
    for image in client.images.list(filters={"label": f"{RUN_LABEL}={run_id}"}):
        images[image.id] = image
    return list(images.values())


def teardown(
    client: Any, compose: ComposeRun, run_id: str, app_image: str, remove_image: bool = True
) -> dict[str, Any]:
    """Remove the run's stack and image; figures say what was swept and what remains."""
    down = compose.run("down", "--volumes", "--remove-orphans", "--timeout", "10")
    figures: dict[str, Any] = {"compose_down": "ok" if down.ok else f"exit {down.returncode}"}
    swept = 0
    for kind in ("containers", "networks", "volumes"):
        for item in leftovers(client, run_id, compose.name)[kind]:
            swept += _remove(item, kind)
    figures["swept"] = swept
    if remove_image:
        for image in run_images(client, run_id, app_image):
            _remove_image(client, image, app_image)
    remaining = leftovers(client, run_id, compose.name)
    figures["remaining"] = {kind: len(items) for kind, items in remaining.items() if items}
    if remove_image and run_images(client, run_id, app_image):
        figures["remaining"]["images"] = len(run_images(client, run_id, app_image))
    return figures


def _remove(item: Any, kind: str) -> int:
    try:
        if kind == "containers":
            item.remove(force=True, v=True)
        elif kind == "volumes":
            item.remove(force=True)
        else:
            item.remove()
    except Exception:  # gone meanwhile, or still busy: the final check reports it
        return 0
    return 1


def _remove_image(client: Any, image: Any, app_image: str) -> None:
    # Untag only what this run tagged: an image someone else tagged too keeps their tag.
    tags = [tag for tag in image.tags if tag != app_image]
    try:
        if app_image in image.tags:
            client.images.remove(app_image)
        if not tags:
            client.images.remove(image.id)
    except Exception:  # noqa: S110 - gone with its last tag, or in use: reported as remaining
        pass
