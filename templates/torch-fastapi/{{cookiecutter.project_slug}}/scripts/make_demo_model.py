{%- set pkg = cookiecutter.package_name -%}
{%- set image = cookiecutter.task == "image-classification" -%}
{%- set file = cookiecutter.model_format | model_file -%}
"""Write the deterministic demo model ({{ cookiecutter.model_format }}) and print its sha256.

The model is real (a seeded {{ "convolutional image classifier" if image else "multi-layer perceptron" }}, untrained) and carries its
description (name, version, shapes, dtype{{ ", labels, normalisation" if image }}) in the file, so the service
runs end to end with no internet and no model of your own yet. The same torch version
writes the same bytes on every run, wherever the project lives.

    python scripts/make_demo_model.py --out models/{{ file }}
    python scripts/make_demo_model.py --out models/heavy.{{ file.split(".")[-1] }} --heavy   # for load tests

stdout gets only the sha256 (for scripts: ``MODEL_SHA256=$(python scripts/...)``);
the human summary goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

# The service's package, from src/ (the image puts it on the path; a checkout does not).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from {{ pkg }} import formats
from {{ pkg }}.networks import {{ "cnn" if image else "mlp" }}

DEFAULT_OUT = Path("models/{{ file }}")
{%- if image %}

#: The demo's labels (CIFAR-10's classes): an untrained model picks among them at random.
LABELS = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

#: size -> image side (pixels) and the channels of each conv block.
SIZES: dict[str, tuple[int, list[int]]] = {
    "small": (32, [8, 16]),
    "heavy": (96, [32, 64, 128]),
}


def build(size: str) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and the metadata of the demo model of the given size."""
    side, channels = SIZES[size]
    torch.manual_seed(0)  # deterministic weights
    module = cnn(channels, len(LABELS))
    meta: dict[str, Any] = {
        "name": f"demo-cnn-{size}",
        "version": "1.0.0",
        "input_shape": [3, side, side],
        "input_dtype": "float32",
        "output_shape": [len(LABELS)],
        "labels": LABELS,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "config": {"channels": channels, "classes": len(LABELS)},
        "description": "Seeded CNN written by scripts/make_demo_model.py",
    }
    return formats.dumps(module, meta), meta
{%- else %}

#: size -> input features, hidden widths, outputs. "heavy" has ~21 MB of weights, so a
#: single-item forward pass is bound by memory traffic and batching pays off.
SIZES: dict[str, tuple[int, list[int], int]] = {
    "small": (4, [16], 3),
    "heavy": (512, [2048, 2048], 10),
}


def build(size: str) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and the metadata of the demo model of the given size."""
    features, hidden, outputs = SIZES[size]
    torch.manual_seed(0)  # deterministic weights
    module = mlp(features, hidden, outputs)
    meta: dict[str, Any] = {
        "name": f"demo-mlp-{size}",
        "version": "1.0.0",
        "input_shape": [features],
        "input_dtype": "float32",
        "output_shape": [outputs],
        "config": {"features": features, "hidden": hidden, "outputs": outputs},
        "description": "Seeded MLP written by scripts/make_demo_model.py",
    }
    return formats.dumps(module, meta), meta
{%- endif %}


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the model, print its sha256."""
    if os.environ.get("PYTHONHASHSEED") != "0" and argv is None:
        # TorchScript writes a module's constants in the order of a set of names, which
        # follows the interpreter's random string hashing; with a fixed seed the file's
        # bytes are the same on every run.
        # Ref: https://docs.python.org/3/using/cmdline.html#envvar-PYTHONHASHSEED
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)  # noqa: S606 - this script again
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="target file")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--size", choices=sorted(SIZES), default="small", help="model size")
    group.add_argument(
        "--heavy", action="store_const", const="heavy", dest="size", help="same as --size heavy"
    )
    args = parser.parse_args(argv)
    data, meta = build(args.size)
    try:
        write_atomic(args.out, data)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(data).hexdigest()
    print(
        f"wrote {args.out} ({len(data)} bytes, {formats.FORMAT}): {meta['name']} "
        f"{meta['version']}, input {meta['input_shape']} {meta['input_dtype']}, "
        f"output {meta['output_shape']}",
        file=sys.stderr,
    )
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
