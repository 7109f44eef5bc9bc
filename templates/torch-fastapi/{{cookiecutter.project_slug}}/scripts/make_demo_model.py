"""Write a small, deterministic TorchScript demo model and print its sha256.

The model is real (a seeded multi-layer perceptron) and carries its description in
the archive (``model_meta.json``), so the service runs end to end with no internet
and no model of your own yet. The same torch version writes the same bytes on every
run, wherever the project lives.

    python scripts/make_demo_model.py --out models/model.pt          # tiny, input [4]
    python scripts/make_demo_model.py --out models/heavy.pt --heavy  # ms per forward pass

stdout gets only the sha256 (for scripts: ``MODEL_SHA256=$(python scripts/...)``);
the human summary goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

META_FILE = "model_meta.json"

#: name -> (input features, hidden widths, outputs). "heavy" has ~21 MB of weights, so
#: a single-item forward pass is bound by memory traffic and batching pays off.
SIZES: dict[str, tuple[int, tuple[int, ...], int]] = {
    "small": (4, (16,), 3),
    "heavy": (512, (2048, 2048), 10),
}


class DemoMLP(torch.jit.ScriptModule):
    """A seeded MLP: dense layers with ReLU between them, logits out.

    Its ``forward`` is compiled from generated source text rather than from this file:
    TorchScript records the source file's path in the archive's debug information, so
    scripting a Python method would make the bytes depend on where the project lives.
    """

    def __init__(self, features: int, hidden: tuple[int, ...], outputs: int) -> None:
        super().__init__()
        widths = [features, *hidden, outputs]
        lines = ["def forward(self, x):"]
        last = len(widths) - 2
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            reference = nn.Linear(fan_in, fan_out)  # borrow its standard initialisation
            setattr(self, f"weight{i}", nn.Parameter(reference.weight.detach().clone()))
            setattr(self, f"bias{i}", nn.Parameter(reference.bias.detach().clone()))
            layer = f"torch.nn.functional.linear(x, self.weight{i}, self.bias{i})"
            lines.append(f"    x = {layer}" if i == last else f"    x = torch.relu({layer})")
        lines.append("    return x")
        self.define("\n".join(lines) + "\n")


def build(size: str) -> tuple[bytes, dict[str, object]]:
    """The archive bytes and metadata of the demo model of the given size."""
    features, hidden, outputs = SIZES[size]
    torch.manual_seed(0)  # deterministic weights
    with warnings.catch_warnings():
        # TorchScript is deprecated upstream in recent torch, but still the format served.
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", DeprecationWarning)
        scripted = DemoMLP(features, hidden, outputs).eval()
    meta: dict[str, object] = {
        "name": f"demo-mlp-{size}",
        "version": "1.0.0",
        "input_shape": [features],
        "input_dtype": "float32",
        "output_shape": [outputs],
        "description": "Seeded MLP written by scripts/make_demo_model.py",
    }
    buffer = io.BytesIO()
    extra = {META_FILE: json.dumps(meta, sort_keys=True)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", DeprecationWarning)
        torch.jit.save(scripted, buffer, _extra_files=extra)
    return buffer.getvalue(), meta


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/model.pt"), help="target file")
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
        f"wrote {args.out} ({len(data)} bytes): {meta['name']} {meta['version']}, "
        f"input {meta['input_shape']} {meta['input_dtype']}, output {meta['output_shape']}",
        file=sys.stderr,
    )
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
