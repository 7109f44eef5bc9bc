"""Image and build benchmarks: servegen's multi-stage image against the naive pattern.

Both images are built from the same generated project, the same base image and the
same wheelhouse, through the harness's BuildKit build, one after the other on the same
engine. The baseline project is a copy with ``benchmarks/naive/Dockerfile`` and no
``.dockerignore``. Three builds of each are timed: cold (no layer cache), after a
code-only change, and after a requirements change. After each rebuild the layer ids are
compared with the image before it, and the engine's disk-usage report gives the bytes
held only by the new image, i.e. what the rebuild really rewrote.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import dockerutil, harness_adapter
from benchmarks.report import Results, Row, Target, markdown_table
from benchmarks.stats import fmt_bytes

NAIVE_DOCKERFILE = Path(__file__).resolve().parent / "naive" / "Dockerfile"
#: The package the requirements change adds: small, pure Python, no dependencies.
EXTRA_REQUIREMENT = "six==1.17.0"
BASELINE = "naive single-stage"


def package_name(project_dir: Path) -> str:
    """The one package under ``src/``."""
    packages = [p.name for p in (project_dir / "src").iterdir() if (p / "__init__.py").is_file()]
    if len(packages) != 1:
        raise ValueError(f"expected one package under {project_dir / 'src'}, found {packages}")
    return packages[0]


def make_naive_copy(project_dir: Path, dest: Path) -> Path:
    """Copy the project to ``dest`` with the naive Dockerfile and no ``.dockerignore``.

    The wheels are hard-linked (same bytes, no second copy on disk); every other file is
    copied, so a change made to one project never shows up in the other.
    """
    wheels = project_dir / "wheels"
    shutil.copytree(project_dir, dest, ignore=shutil.ignore_patterns("wheels"))
    (dest / "wheels").mkdir(exist_ok=True)
    for wheel in wheels.glob("*") if wheels.is_dir() else []:
        try:
            os.link(wheel, dest / "wheels" / wheel.name)
        except OSError:
            shutil.copy2(wheel, dest / "wheels" / wheel.name)
    (dest / ".dockerignore").unlink(missing_ok=True)
    text = NAIVE_DOCKERFILE.read_text(encoding="utf-8")
    app_module = f"{package_name(project_dir)}.main:app"
    text = re.sub(r"^ARG APP_MODULE=.*$", f"ARG APP_MODULE={app_module}", text, flags=re.M)
    (dest / "Dockerfile").write_text(text, encoding="utf-8")
    return dest


def _rewrite(path: Path, text: str) -> None:
    """Replace a file with new content through a new inode (never through a hard link)."""
    tmp = path.with_name(path.name + ".bench-tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def change_code(project_dir: Path, nonce: str) -> Path:
    """Make a code-only change: one comment line appended to the package's app module."""
    pkg = project_dir / "src" / package_name(project_dir)
    target = pkg / "app.py" if (pkg / "app.py").is_file() else pkg / "__init__.py"
    _rewrite(target, target.read_text(encoding="utf-8") + f"# benchmark code change {nonce}\n")
    return target


def change_requirements(
    project_dir: Path, nonce: str, requirement: str = EXTRA_REQUIREMENT
) -> None:
    """Make a requirements change: one new pinned package (and a unique comment line).

    The comment keeps a second benchmark run from finding this build in the cache.
    """
    req = project_dir / "requirements.txt"
    text = req.read_text(encoding="utf-8").rstrip("\n")
    _rewrite(req, f"{text}\n# benchmark requirements change {nonce}\n{requirement}\n")


def unique_bytes(client: Any, image_id: str) -> int | None:
    """Bytes held only by this image (no other image shares them), from ``system df``."""
    for img in client.df().get("Images") or []:
        if img.get("Id") == image_id:
            shared = img.get("SharedSize")
            size = img.get("Size")
            if isinstance(shared, int) and shared >= 0 and isinstance(size, int):
                return size - shared
    return None


@dataclass
class Variant:
    """One of the two images under comparison and its figures across the builds."""

    label: str
    target: harness_adapter.BuildTarget
    cold: dockerutil.ImageFigures | None = None
    #: build -> wall-clock seconds ("cold", "code", "requirements")
    seconds: dict[str, float] = field(default_factory=dict)
    #: rebuild -> (layers kept, layers rebuilt, bytes rewritten)
    rebuilt: dict[str, tuple[int, int, int | None]] = field(default_factory=dict)
    #: build -> layer ids of the image after it
    layer_ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def figures(self) -> dockerutil.ImageFigures:
        """The cold build's image figures (measured before any rebuild)."""
        if self.cold is None:
            raise RuntimeError(f"{self.label}: no cold build measured")
        return self.cold


def _cold_build(client: Any, v: Variant, base_image: str, progress: Callable[[str], None]) -> None:
    """Build without the layer cache and measure the image against its base."""
    progress(f"build: {v.label}, cold (no layer cache)")
    v.seconds["cold"] = harness_adapter.build(v.target, no_cache=True)
    v.cold = dockerutil.image_figures(client, v.target.image, base_image)
    v.layer_ids["cold"] = list(v.cold.layers)


def _rebuild(client: Any, v: Variant, step: str, progress: Callable[[str], None]) -> None:
    """Keep the current image under a tag, rebuild, and record time and layer reuse."""
    before = client.images.get(v.target.image)
    repo, _, tag = v.target.image.rpartition(":")
    before.tag(repo, f"{tag}-before-{step}")
    progress(f"build: {v.label}, rebuild after {step} change")
    v.seconds[step] = harness_adapter.build(v.target)
    after = client.images.get(v.target.image)
    kept, rebuilt = dockerutil.layer_reuse(
        list(before.attrs["RootFS"]["Layers"]), list(after.attrs["RootFS"]["Layers"])
    )
    v.rebuilt[step] = (kept, rebuilt, unique_bytes(client, after.id) if rebuilt else 0)
    v.layer_ids[step] = list(after.attrs["RootFS"]["Layers"])


def _venv_breakdowns(
    client: Any, variants: list[Variant], results: Results, progress: Callable[[str], None]
) -> None:
    """Size of each image's virtual environment per package (after the cold build)."""
    for v in variants:
        progress(f"image: {v.label}, size of the virtual environment per package")
        try:
            info = dockerutil.venv_breakdown(client, v.target.image)
            results.breakdown[v.label] = sorted(info["entries"].items(), key=lambda kv: -kv[1])
        except Exception as exc:
            results.failures.append(f"venv breakdown of {v.label}: {exc}")


def _provide_wheel(
    client: Any, project_dir: Path, naive_dir: Path, base_image: str, requirement: str
) -> None:
    """Put the extra requirement's wheel into both projects' ``wheels/`` (fetched once)."""
    dist = requirement.split("==")[0].strip().replace("-", "_").lower()
    if not list((project_dir / "wheels").glob(f"{dist}-*.whl")):
        harness_adapter.add_wheels(project_dir, base_image, client, [requirement])
    for wheel in (project_dir / "wheels").glob(f"{dist}-*.whl"):
        link = naive_dir / "wheels" / wheel.name
        if not link.exists():
            os.link(wheel, link)


def run(
    client: Any,
    *,
    work: Path,
    project_dir: Path,
    base_image: str,
    run_id: str,
    results: Results,
    progress: Callable[[str], None],
    extra_requirement: str = EXTRA_REQUIREMENT,
) -> dict[str, str]:
    """Build both images three times, add the rows to ``results``; return the image names.

    ``extra_requirement`` is the pin the requirements change adds; its wheel is fetched
    into ``wheels/`` unless one is there already.
    """
    naive_dir = make_naive_copy(project_dir, work / "naive" / project_dir.name)
    variants = [
        Variant("servegen", _target(project_dir, "servegen", "s", run_id, base_image)),
        Variant(BASELINE, _target(naive_dir, "naive", "n", run_id, base_image)),
    ]
    for v in variants:
        _cold_build(client, v, base_image, progress)
    _venv_breakdowns(client, variants, results, progress)
    nonce = uuid.uuid4().hex[:12]
    for v in variants:
        change_code(v.target.project_dir, nonce)
        _rebuild(client, v, "code", progress)
    _provide_wheel(client, project_dir, naive_dir, base_image, extra_requirement)
    for v in variants:
        change_requirements(v.target.project_dir, nonce, extra_requirement)
        _rebuild(client, v, "requirements", progress)
    _add_rows(results, variants)
    for v in variants:
        results.tables.append(
            (
                f"Layer ids of the {v.label} image after each build (above the base image)",
                layer_table(v.layer_ids, v.figures.base_layers),
            )
        )
    return {v.label: v.target.image for v in variants}


def _target(
    project_dir: Path, variant: str, short: str, run_id: str, base_image: str
) -> harness_adapter.BuildTarget:
    """The build of one variant: its project, its run-tagged image, its compose project."""
    return harness_adapter.BuildTarget(
        project_dir, f"servegen-bench/{variant}:{run_id}", f"sgbench-{run_id}-{short}", base_image
    )


def layer_table(layer_ids: dict[str, list[str]], base_layers: int) -> str:
    """A markdown table of short layer ids per build; a changed id is marked ``(new)``.

    Layer ids are the digests of each layer's content (``RootFS.Layers``), so an id that
    stays the same across a rebuild is a layer that was reused, byte for byte.
    """
    steps = list(layer_ids)
    depth = max(len(ids) for ids in layer_ids.values())
    rows = []
    for i in range(base_layers, depth):
        row = [str(i + 1)]
        previous: str | None = None
        for step in steps:
            ids = layer_ids[step]
            short = ids[i].removeprefix("sha256:")[:12] if i < len(ids) else "—"
            mark = " (new)" if previous is not None and short != previous else ""
            row.append(short + mark)
            previous = short
        rows.append(row)
    headers = [
        "layer",
        *[f"after {s} build" if s == "cold" else f"after {s} change" for s in steps],
    ]
    return markdown_table(headers, rows)


def _add_rows(results: Results, variants: list[Variant]) -> None:
    s, n = variants
    _image_rows(results, s.figures, n.figures)
    _build_rows(results, s, n)
    _code_share_row(results, s, n)


def _image_rows(results: Results, s: dockerutil.ImageFigures, n: dockerutil.ImageFigures) -> None:
    """Size, bytes above the base and layers of the two images after a cold build."""
    sec = "Image (after a cold build)"
    results.add(Row("image.size", sec, "total size", "bytes", s.size, n.size, BASELINE))
    results.add(
        Row(
            "image.above_base",
            sec,
            "bytes added above the base image",
            "bytes",
            s.above_base,
            n.above_base,
            BASELINE,
            note=f"base image {fmt_bytes(s.base_size)}",
            target=Target("ratio", "<=", 0.5),
        )
    )
    results.add(
        Row(
            "image.layers",
            sec,
            "layers (base included)",
            "count",
            s.layer_count,
            n.layer_count,
            BASELINE,
            note=f"{s.own_layers} vs {n.own_layers} above the base",
        )
    )


_BUILD_SECTION = "Build (BuildKit via compose, offline from the same wheelhouse)"


def _build_rows(results: Results, s: Variant, n: Variant) -> None:
    """Seconds of each build, layers rebuilt and bytes rewritten by each rebuild."""
    sec = _BUILD_SECTION
    results.add(
        Row(
            "build.cold",
            sec,
            "cold build (--no-cache)",
            "s",
            s.seconds["cold"],
            n.seconds["cold"],
            BASELINE,
        )
    )
    for step, label, target in (
        ("code", "rebuild after a code-only change", Target("ratio", "<=", 0.1)),
        ("requirements", "rebuild after a requirements change", None),
    ):
        sk, sr, sb = s.rebuilt[step]
        nk, nr, nb = n.rebuilt[step]
        results.add(
            Row(
                f"build.{step}",
                sec,
                label,
                "s",
                s.seconds[step],
                n.seconds[step],
                BASELINE,
                note=f"layers rebuilt: {sr} of {sk + sr} vs {nr} of {nk + nr}",
                target=target,
            )
        )
        results.add(
            Row(
                f"build.{step}_bytes",
                sec,
                f"bytes rewritten by the {step} rebuild",
                "bytes",
                sb,
                nb,
                BASELINE,
                note="bytes held only by the new image (engine disk-usage report)",
            )
        )


def _code_share_row(results: Results, s: Variant, n: Variant) -> None:
    """Share of each image that a code-only rebuild rewrote."""

    def share(v: Variant) -> float | None:
        rewritten, above = v.rebuilt["code"][2], v.figures.above_base
        return rewritten / above * 100 if rewritten is not None and above else None

    results.add(
        Row(
            "build.code_only_layers",
            _BUILD_SECTION,
            "share of the image rewritten by a code-only rebuild (only code layers: under 1 %)",
            "pct",
            share(s),
            share(n),
            BASELINE,
            target=Target("value", "<=", 1.0),
        )
    )
