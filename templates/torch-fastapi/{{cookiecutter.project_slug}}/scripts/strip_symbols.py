"""Strip symbol tables and debug sections from a virtual environment's shared libraries.

The Dockerfile's builder stage runs this once, after the dependencies are installed;
the service never does. Wheels ship their compiled modules with full symbol tables and
often debug information (torch's main library alone carries about 90 MB of them). The
loader needs neither: it resolves names through the dynamic symbol table, which
``strip --strip-unneeded`` keeps. What is lost is symbol names in native stack traces
and in a debugger, so an image built for debugging native code should keep them
(``--build-arg STRIP_SYMBOLS=0``).

Left alone: vendored libraries in ``*.libs`` folders (``auditwheel`` rewrites them with
``patchelf``, and ``strip`` is known to damage such files), symbolic links, and anything
without a symbol table or debug section.

The proof is by import: every extension module that imported before stripping must
still import after it. If one does not, the files of its top-level package are put back
as they were and the build goes on with a warning; if it still fails, the build stops.

Usage: python strip_symbols.py VENV_DIR
"""

from __future__ import annotations

import importlib.machinery
import mmap
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
STRIP_ARGS = ("--strip-unneeded", "--preserve-dates")

# Imports each module named on stdin (one per line) and says how each went, as it goes,
# so that a module whose import kills the interpreter is known by name. Failures are
# expected for a few modules (optional back ends, modules that need their parent
# imported in a particular way); only a change between before and after matters.
IMPORT_CHECK = """
import importlib, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
for name in sys.stdin.read().split():
    print("try", name, flush=True)
    try:
        importlib.import_module(name)
    except BaseException:
        print("failed", name, flush=True)
    else:
        print("ok", name, flush=True)
"""


def section_names(path: Path) -> list[str]:
    """Names of an ELF file's sections, or [] if it is not a readable ELF file."""
    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _section_names(data)
    except (OSError, ValueError):
        return []


def _section_names(data: mmap.mmap) -> list[str]:
    if len(data) < 64 or data[:4] != ELF_MAGIC:
        return []
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # 64-bit: offsets are 8 bytes wide
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
        offset_at, offset_fmt = 0x18, "Q"
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
        offset_at, offset_fmt = 0x10, "I"
    if shoff == 0 or shnum == 0 or shstrndx >= shnum:
        return []
    try:
        (strtab,) = struct.unpack_from(
            order + offset_fmt, data, shoff + shstrndx * shentsize + offset_at
        )
        names = []
        for index in range(shnum):
            (name_offset,) = struct.unpack_from(order + "I", data, shoff + index * shentsize)
            start = strtab + name_offset
            end = data.find(b"\0", start)
            names.append(data[start:end].decode("ascii", "replace"))
    except struct.error:
        return []
    return names


def worth_stripping(path: Path) -> bool:
    """Whether the file is an ELF file that carries a symbol table or debug sections."""
    return any(n == ".symtab" or n.startswith(".debug") for n in section_names(path))


def candidates(site: Path) -> list[Path]:
    """Regular files under ``site`` that stripping would shrink, vendored libraries aside."""
    found = []
    for path in sorted(site.rglob("*.so*")):
        relative = path.relative_to(site)
        if path.is_symlink() or not path.is_file():
            continue
        if any(part.endswith(".libs") for part in relative.parts[:-1]):
            continue
        if worth_stripping(path):
            found.append(path)
    return found


def module_name(site: Path, path: Path) -> str | None:
    """The import name of an extension module file, or None for a plain library."""
    relative = path.relative_to(site)
    for suffix in sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True):
        if relative.name.endswith(suffix):
            stem = relative.name[: -len(suffix)]
            parts = [*relative.parts[:-1], stem]
            if all(part.isidentifier() for part in parts):
                return ".".join(parts)
    return None


def importable(python: str, site: Path, names: list[str]) -> set[str]:
    """The subset of ``names`` that import from ``site``.

    They are tried in one fresh interpreter, in order; if an import kills it (a crash
    in native code), that module counts as failed and a new one goes on with the rest.
    """
    ok: set[str] = set()
    left = list(names)
    while left:
        done = subprocess.run(  # noqa: S603 (the venv's own interpreter, a fixed script)
            [python, "-c", IMPORT_CHECK, str(site)],
            input="\n".join(left),
            capture_output=True,
            text=True,
            check=False,
        )
        tried: list[str] = []
        for line in done.stdout.splitlines():
            verdict, _, name = line.partition(" ")
            if verdict == "try":
                tried.append(name)
            elif verdict == "ok":
                ok.add(name)
        if done.returncode == 0:
            break
        if not tried:
            message = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            raise RuntimeError(f"{python} cannot run the import check: {message[0]}")
        left = left[len(tried) :]  # the last one tried took the interpreter down
    return ok


def strip_file(strip: str, path: Path, backup: Path) -> None:
    """Strip ``path`` in place through a temporary copy, keeping the original at ``backup``."""
    stripped = path.with_name(path.name + ".stripped")
    command = [strip, *STRIP_ARGS, "-o", str(stripped), str(path)]
    subprocess.run(command, check=True)  # noqa: S603 (strip on a file of the venv)
    shutil.copymode(path, stripped)
    os.replace(path, backup)
    os.replace(stripped, path)


def top_package(site: Path, path: Path) -> str:
    """The first folder (or file) of ``path`` under ``site``: the package it belongs to."""
    return path.relative_to(site).parts[0]


def megabytes(paths: list[Path]) -> float:
    """The files' total size in MB."""
    return sum(p.stat().st_size for p in paths) / 1e6


def strip_site(python: str, site: Path, strip: str) -> int:
    """Strip the libraries under ``site``, then prove its compiled modules still import.

    ``python`` is the interpreter that imports them; the exit status is returned.
    """
    files = candidates(site)
    modules = {p: m for p in files if (m := module_name(site, p)) is not None}
    before_ok = importable(python, site, sorted(modules.values()))
    size_before = megabytes(files)

    backups: dict[Path, Path] = {}
    for path in files:
        backup = path.with_name(path.name + ".unstripped")
        strip_file(strip, path, backup)
        backups[path] = backup

    broken = before_ok - importable(python, site, sorted(before_ok))
    if broken:
        packages = {top_package(site, p) for p, m in modules.items() if m in broken}
        print(
            f"strip_symbols: warning: {', '.join(sorted(broken))} stopped importing; "
            f"keeping the symbols of {', '.join(sorted(packages))}",
            file=sys.stderr,
        )
        for path, backup in backups.items():
            if top_package(site, path) in packages:
                os.replace(backup, path)
        still = broken - importable(python, site, sorted(broken))
        if still:
            names = ", ".join(sorted(still))
            print(f"strip_symbols: error: {names} no longer import", file=sys.stderr)
            return 1
    for backup in backups.values():
        backup.unlink(missing_ok=True)

    print(
        f"strip_symbols: {len(files)} files from {size_before:.0f} MB to "
        f"{megabytes(files):.0f} MB; {len(before_ok)} extension modules import as before"
    )
    return 0


def main(venv: Path) -> int:
    """Strip the libraries of the virtual environment at ``venv``."""
    strip = shutil.which("strip")
    if strip is None:
        print("strip_symbols: no strip program found; symbols kept", file=sys.stderr)
        return 0
    python = str(venv / "bin" / "python")
    site = Path(
        subprocess.run(  # noqa: S603 (the venv's own interpreter)
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    try:
        return strip_site(python, site, strip)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"strip_symbols: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
