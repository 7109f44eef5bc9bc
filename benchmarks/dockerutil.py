"""Image inspection and single-container runs for the benchmarks, through the Docker SDK.

Building is not done here: images come from the harness's BuildKit build. This module
only reads images (size, layers, the virtual environment's contents) and starts the
built app image as a plain container, which is what the start-up and serving
benchmarks time. Everything it creates carries :data:`LABEL` and is removed by
:func:`cleanup`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness_adapter import last_line, loopback

LABEL = "io.servegen.benchmark"

#: Runs inside an image; prints the size of each site-packages entry (and of torch's
#: sub-folders, the biggest package by far) as JSON. Sizes are of regular files, as
#: ``du --apparent-size`` counts them; hard links are counted once.
_BREAKDOWN_SCRIPT = r"""
import json, os, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
seen = set()
def size(path):
    if os.path.islink(path):
        return 0
    if not os.path.isdir(path):
        st = os.lstat(path)
        return 0 if (st.st_ino in seen) else (seen.add(st.st_ino) or st.st_size)
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                st = os.lstat(p)
                if st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_size
    return total
entries = {}
meta = 0
for name in os.listdir(site):
    p = os.path.join(site, name)
    if name.endswith((".dist-info", ".egg-info")):
        meta += size(p)
    elif name == "torch":
        for sub in os.listdir(p):
            entries["torch/" + sub] = size(os.path.join(p, sub))
    else:
        entries[name] = size(p)
entries["(package metadata: *.dist-info)"] = meta
# Entries were counted first, so the walk of the prefix adds only what lies outside them.
total = sum(entries.values()) + size(sys.prefix)
print(json.dumps({"prefix": sys.prefix, "site": site, "prefix_bytes": total, "entries": entries}))
"""


@dataclass(frozen=True)
class ImageFigures:
    """Size and layers of one image, and how it relates to its base image."""

    ref: str
    image_id: str
    size: int
    base_size: int
    layers: list[str]
    base_layers: int

    @property
    def above_base(self) -> int:
        """Bytes this image adds on top of its base image."""
        return self.size - self.base_size

    @property
    def layer_count(self) -> int:
        """Number of file-system layers, base layers included."""
        return len(self.layers)

    @property
    def own_layers(self) -> int:
        """Number of layers added on top of the base image."""
        return len(self.layers) - self.base_layers


def image_figures(client: Any, ref: str, base_ref: str) -> ImageFigures:
    """Measure ``ref`` against ``base_ref`` (whose layers must be a prefix of ``ref``'s)."""
    image = client.images.get(ref)
    base = client.images.get(base_ref)
    layers = list(image.attrs["RootFS"].get("Layers", []))
    base_layers = list(base.attrs["RootFS"].get("Layers", []))
    if layers[: len(base_layers)] != base_layers:
        raise ValueError(f"{ref} is not built on {base_ref}: the base layers differ")
    return ImageFigures(
        ref=ref,
        image_id=image.id,
        size=int(image.attrs["Size"]),
        base_size=int(base.attrs["Size"]),
        layers=layers,
        base_layers=len(base_layers),
    )


def layer_reuse(before: list[str], after: list[str]) -> tuple[int, int]:
    """Return (kept, rebuilt): layers of ``after`` shared with ``before`` as a prefix, and the rest.

    Layer ids are content digests of each layer's diff, and an image's layers stack in
    order, so the common prefix is exactly what a rebuild could reuse.
    Ref: https://github.com/opencontainers/image-spec/blob/main/config.md (rootfs.diff_ids)
    """
    kept = 0
    for old, new in zip(before, after, strict=False):
        if old != new:
            break
        kept += 1
    return kept, len(after) - kept


def venv_breakdown(client: Any, ref: str, timeout: float = 120.0) -> dict[str, Any]:
    """Return per-entry sizes of the site-packages folder of the Python on the image's PATH."""
    container = client.containers.run(
        ref,
        entrypoint=["python", "-c", _BREAKDOWN_SCRIPT],
        command=[],
        labels={LABEL: "breakdown"},
        detach=True,
        network_disabled=True,
    )
    try:
        status = container.wait(timeout=timeout)
        out = container.logs(stdout=True, stderr=False).decode()
        if status.get("StatusCode") != 0:
            err = container.logs(stdout=False, stderr=True).decode()
            raise RuntimeError(f"size breakdown failed in {ref}: {last_line(err, str(status))}")
    finally:
        remove(container)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def make_model(client: Any, image: str, out_dir: Path, extra_args: list[str], filename: str) -> str:
    """Run the image's own demo-model maker into ``out_dir/filename``; return its sha256."""
    container = client.containers.run(
        image,
        entrypoint=[
            "python",
            "scripts/make_demo_model.py",
            "--out",
            f"/out/{filename}",
            *extra_args,
        ],
        command=[],
        user="0",  # the bind-mounted host folder belongs to root
        volumes={str(out_dir): {"bind": "/out", "mode": "rw"}},
        labels={LABEL: "model"},
        detach=True,
        network_disabled=True,
    )
    try:
        status = container.wait(timeout=300)
        logs = str(container.logs().decode(errors="replace"))
    finally:
        remove(container)
    if status.get("StatusCode") != 0:
        raise RuntimeError(f"make_demo_model.py {' '.join(extra_args)} failed: {last_line(logs)}")
    # The maker writes 0600 as root; the app runs as a non-root user and reads it
    # through a read-only bind mount, as it would from the downloader's volume.
    for made in out_dir.iterdir():
        made.chmod(0o644)
    for token in reversed(logs.split()):
        token = token.strip().lower()
        if len(token) == 64 and all(c in "0123456789abcdef" for c in token):
            return token
    raise RuntimeError("make_demo_model.py printed no sha256")


@dataclass
class AppContainer:
    """A started app container published on 127.0.0.1 and the time it took to be ready."""

    container: Any
    port: int
    start_to_ready: float
    env: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        """Return the loopback URL of ``path`` on this container."""
        return f"http://127.0.0.1:{self.port}{path}"


def _published_port(container: Any, container_port: int, deadline: float) -> int:
    while True:
        container.reload()
        bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(
            f"{container_port}/tcp"
        )
        if bindings:
            return int(bindings[0]["HostPort"])
        if container.status == "exited" or time.monotonic() > deadline:
            raise RuntimeError(f"container {container.short_id} published no port")
        time.sleep(0.01)


def wait_ready(container: Any, port: int, deadline: float, path: str = "/ready") -> None:
    """Poll ``path`` every 20 ms until it answers 200; raise with the reason otherwise.

    A body that reports the state ``failed`` (the model could not be loaded) ends the
    wait at once: it will not become ready by itself.
    """
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = loopback.request(f"http://127.0.0.1:{port}{path}", timeout=1.0)
            if status == 200:
                return
            last = f"{status} {body[:200].decode(errors='replace')}"
            if b'"state":"failed"' in body.replace(b" ", b""):
                break
        except loopback.NoAnswer:
            pass
        time.sleep(0.02)
        container.reload()
        if container.status == "exited":
            break
    raise RuntimeError(f"app container not ready ({container.status}); {path}: {last}")


def start_app(
    client: Any,
    image: str,
    *,
    env: dict[str, str],
    model_dir: Path,
    container_port: int,
    run_id: str,
    network: str | None = None,
    timeout: float = 120.0,
    cpuset: str | None = None,
    aliases: tuple[str, ...] = (),
) -> AppContainer:
    """Create the app container, then time ``start`` -> ``/ready`` answering 200.

    The clock starts just before the start call, after the container was created, so
    the figure is what an orchestrator sees when it (re)starts an existing container.
    ``aliases`` are extra names of the container on ``network`` (as compose gives each
    replica of a service the service's name).
    """
    kwargs: dict[str, Any] = {}
    if cpuset is not None:
        kwargs["cpuset_cpus"] = cpuset
    if network is not None and aliases:
        kwargs["networking_config"] = {
            network: client.api.create_endpoint_config(aliases=list(aliases))
        }
    container = client.containers.create(
        image,
        environment=env,
        ports={f"{container_port}/tcp": ("127.0.0.1", None)},
        volumes={str(model_dir): {"bind": "/models", "mode": "ro"}},
        labels={LABEL: run_id},
        network=network,
        detach=True,
        **kwargs,
    )
    try:
        t0 = time.monotonic()
        container.start()
        port = _published_port(container, container_port, t0 + timeout)
        wait_ready(container, port, t0 + timeout)
        elapsed = time.monotonic() - t0
    except BaseException:
        remove(container)
        raise
    return AppContainer(container=container, port=port, start_to_ready=elapsed, env=env)


@contextmanager
def network(client: Any, name: str, run_id: str) -> Iterator[str]:
    """A labelled user-defined bridge network, removed on exit."""
    net = client.networks.create(name, driver="bridge", labels={LABEL: run_id})
    try:
        yield name
    finally:
        # Clean-up must go on; cleanup() retries by label.
        with contextlib.suppress(Exception):
            net.remove()


def remove(container: Any) -> None:
    """Remove a container and its anonymous volumes; one that is already gone is fine."""
    try:
        container.remove(force=True, v=True)
    except Exception as exc:
        if getattr(getattr(exc, "response", None), "status_code", None) != 404:
            raise


def cleanup(client: Any, run_id: str) -> list[str]:
    """Remove every container, network and volume labelled ``run_id``; return what is left."""
    leftovers: list[str] = []
    flt = {"label": f"{LABEL}={run_id}"}
    for c in client.containers.list(all=True, filters=flt):
        try:
            remove(c)
        except Exception as exc:
            leftovers.append(f"container {c.short_id}: {exc}")
    for n in client.networks.list(filters=flt):
        try:
            n.remove()
        except Exception as exc:
            leftovers.append(f"network {n.name}: {exc}")
    for v in client.volumes.list(filters=flt):
        try:
            v.remove(force=True)
        except Exception as exc:
            leftovers.append(f"volume {v.name}: {exc}")
    return leftovers


def start_db(
    client: Any,
    image: str,
    *,
    name: str,
    network: str,
    run_id: str,
    password: str,
    database: str,
    cpuset: str | None = None,
) -> Any:
    """Start a MySQL-protocol database on ``network`` (reachable as ``name``); wait for it.

    The official image's variables are used, so the stand-in and ``mysql:8.4`` both work.
    Ready means a real login of the app's user succeeds, not only ``mysqladmin ping``,
    which already answers while the first-run initialisation is still going on.
    """
    # A labelled named volume for the data directory (the image declares one): an
    # anonymous volume would carry no label, and clean-up could not find it.
    volume = client.volumes.create(f"{name}-data", labels={LABEL: run_id})
    container = client.containers.run(
        image,
        name=name,
        volumes={volume.name: {"bind": "/var/lib/mysql", "mode": "rw"}},
        environment={
            "MYSQL_ROOT_PASSWORD": password + "-root",
            "MYSQL_DATABASE": database,
            "MYSQL_USER": "app",
            "MYSQL_PASSWORD": password,
        },
        network=network,
        labels={LABEL: run_id},
        detach=True,
        **({"cpuset_cpus": cpuset} if cpuset else {}),
    )
    deadline = time.monotonic() + 180
    # "status" needs a successful login, unlike "ping".
    probe = ["mysqladmin", "-h", "127.0.0.1", "-uapp", f"-p{password}", "status"]
    while time.monotonic() < deadline:
        code, _ = container.exec_run(probe)
        if code == 0:
            return container
        container.reload()
        if container.status == "exited":
            break
        time.sleep(1)
    tail = container.logs(tail=3).decode(errors="replace")
    remove(container)
    raise RuntimeError(f"database {image} not ready: {last_line(tail, 'no log')}")


def remove_run_images(client: Any, run_id: str, repository: str = "servegen-bench") -> list[str]:
    """Remove every ``<repository>/*`` tag that carries ``run_id``; return what failed."""
    failed: list[str] = []
    for img in client.images.list(name=f"{repository}/*"):
        for tag in img.tags:
            if run_id in tag.rpartition(":")[2]:
                try:
                    client.images.remove(tag)
                except Exception as exc:
                    failed.append(f"image {tag}: {exc}")
    return failed
