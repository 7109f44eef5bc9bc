"""Command line: ``python -m benchmarks run [--quick] [--out docs/benchmarks.md]``.

Prints the results as markdown on standard output (progress goes to standard error)
and, with ``--out``, replaces the results block of that file with them and the exact
command. Exit codes: 0 every section ran, 1 a section failed (its row says why),
2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from benchmarks.report import render_markdown, write_doc
from benchmarks.run import SECTIONS, RunOptions, command_line, run


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section {', '.join(unknown) or '(none)'}; choose from {', '.join(SECTIONS)}"
        )
    return names


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the smoke tests)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the benchmarks and print a markdown table")
    r.add_argument("--quick", action="store_true", help="fewer repetitions, shorter load")
    r.add_argument("--out", type=Path, help="write the results into this markdown file")
    r.add_argument("--json", type=Path, help="also write every figure as JSON")
    r.add_argument(
        "--only",
        type=_sections,
        default=SECTIONS,
        metavar="SECTIONS",
        help=f"comma-separated subset of: {', '.join(SECTIONS)}",
    )
    r.add_argument(
        "--base-image",
        default=os.environ.get("SERVEGEN_BENCH_BASE_IMAGE", "python:3.11-slim"),
        help="base image of both images under comparison (default: %(default)s)",
    )
    r.add_argument(
        "--db-image",
        default=os.environ.get("SERVEGEN_BENCH_DB_IMAGE", "mysql:8.4"),
        help="MySQL-protocol image for the prediction log (default: %(default)s)",
    )
    r.add_argument(
        "--proxy-image",
        default=os.environ.get("SERVEGEN_BENCH_PROXY_IMAGE", "haproxy:3.0"),
        help="HAProxy image of the proxy in front of the replicas (default: %(default)s)",
    )
    r.add_argument(
        "--heavy-model-args",
        default="--heavy",
        help="arguments of scripts/make_demo_model.py for the heavier model (default: %(default)s)",
    )
    r.add_argument("--keep-images", action="store_true", help="keep the images built")
    r.add_argument(
        "--no-pin",
        action="store_true",
        help="let the server and the load generator share every CPU "
        "(default: server on CPU 0, load generator on the others)",
    )
    r.add_argument(
        "--image",
        help="measure start-up and serving of this already built app image "
        "(not with the build section)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, run, print, write."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.out is not None and not args.out.parent.is_dir():
        print(f"error: --out {args.out}: folder does not exist", file=sys.stderr)
        return 2
    if args.image and "build" in args.only:
        print(
            "error: --image measures an existing image: add --only without build", file=sys.stderr
        )
        return 2
    opts = RunOptions(
        quick=args.quick,
        sections=args.only,
        base_image=args.base_image,
        db_image=args.db_image,
        proxy_image=args.proxy_image,
        heavy_model_args=tuple(shlex.split(args.heavy_model_args)),
        keep_images=args.keep_images,
        image=args.image,
        pin=not args.no_pin,
        command=command_line(argv),
    )
    try:
        results = run(opts)
    except KeyboardInterrupt:
        print(
            "interrupted; containers, networks and images of this run were removed", file=sys.stderr
        )
        return 130
    except Exception as exc:  # the engine vanished, the project did not render...
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(render_markdown(results))
    if args.out is not None:
        write_doc(args.out, results)
        print(f"results written to {args.out}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(results.to_json(), encoding="utf-8")
    return 1 if results.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
