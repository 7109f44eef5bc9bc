"""Render again into an existing project, file by file, without losing a file.

``servegen new DEST --force`` on an existing servegen project renders the template
into a staging folder (as every render does), then brings DEST up to that fresh render
under these rules:

- Only generated files are ever written or removed: the files of the fresh render and
  those the previous render recorded in ``_files`` of the answers file. Anything else
  in DEST (``.git``, ``.env``, ``.venv``, ``models/``, the user's own files) is never
  written, removed or chmod-ed, and DEST itself is never removed or replaced, so a
  shell inside it stays where it was.
- A generated file whose content already equals the new version is left alone.
- One the user has not changed since it was rendered (its sha256 equals the recorded
  one) is replaced by the new version.
- One the user has changed, or one of that name that no earlier render recorded, is
  kept; the new version is written beside it as ``<name>.servegen-new`` (a name that
  belongs to servegen: a later update writes it again) and reported.
- A file the previous render generated and the new one does not is removed when the
  user never changed it, and kept and reported otherwise.
- Nothing is written beyond a symbolic link or over anything but a regular file.
- Each file goes to a temporary file in its own folder and is renamed over the old one;
  the answers file, with the new manifest, is written last. An update that stops
  half-way (a full disk) leaves each file either old or new, and the same command run
  again completes it: a file already replaced then equals the new version.

copier and cruft update a project by applying the template's own diff with git; this
is simpler and needs no git: whole files, told apart by their recorded hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.errors import RenderError

#: The file every generated project records its answers (and its manifest) in.
ANSWERS_FILE = ".servegen-answers.yml"

#: Key of the manifest in the answers file: POSIX relative path -> sha256 (hex).
MANIFEST_KEY = "_files"

#: Suffix of the new version of a file the user changed, written beside it.
NEW_SUFFIX = ".servegen-new"

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Kept:
    """A generated file left as the user had it, and why."""

    path: str
    reason: str
    #: Where the new version was written (POSIX, relative to the project), if anywhere.
    new_version: str | None = None

    def describe(self) -> str:
        """Return one line for the user: the file, the reason, the new version."""
        text = f"{self.path} ({self.reason})"
        if self.new_version:
            text += f"; the new version is {self.new_version}"
        return text


@dataclass
class UpdateReport:
    """What an update did; every path is POSIX and relative to the project."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)

    def summary(self) -> str:
        """Return the counts, for instance ``2 replaced, 1 added, 0 removed, ...``."""
        return (
            f"{len(self.replaced)} replaced, {len(self.added)} added,"
            f" {len(self.removed)} removed, {len(self.unchanged)} unchanged,"
            f" {len(self.kept)} kept"
        )

    def kept_message(self) -> str:
        """Return the one-line message for the kept files (empty when there are none)."""
        if not self.kept:
            return ""
        count = len(self.kept)
        text = f"rendered, but kept {count} {'file' if count == 1 else 'files'} you changed"
        text += " (listed above)"
        if any(k.new_version for k in self.kept):
            text += f"; merge each <name>{NEW_SUFFIX} into the file beside it, then delete it"
        return text


def read_manifest(answers_file: Path) -> dict[str, str]:
    """Return the ``_files`` manifest of an answers file; empty when it has none.

    Entries that are not a plain relative path with a sha256 are dropped: the file is
    the user's to edit, and an entry like ``../x`` must never lead outside the project.
    A missing or unreadable manifest only makes the update more careful (every file
    that differs from the new version then counts as changed).
    """
    try:
        data: Any = yaml.safe_load(answers_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    files = data.get(MANIFEST_KEY) if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {
        rel: digest
        for rel, digest in files.items()
        if isinstance(rel, str)
        and _is_plain_relative(rel)
        and rel != ANSWERS_FILE
        and isinstance(digest, str)
        and len(digest) == 64
        and set(digest) <= _HEX
    }


def _is_plain_relative(rel: str) -> bool:
    parts = rel.split("/")
    return "\0" not in rel and all(part not in ("", ".", "..") for part in parts)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fresh_files(fresh: Path) -> list[str]:
    """Return the regular files of the fresh render (answers file aside), sorted."""
    found = []
    for root, dirs, files in os.walk(fresh):
        dirs.sort()
        for name in files:
            path = Path(root, name)
            rel = path.relative_to(fresh).as_posix()
            if rel != ANSWERS_FILE and stat.S_ISREG(path.lstat().st_mode):
                found.append(rel)
    return sorted(found)


def _blocking_parent(dest: Path, rel: str, removing: set[str]) -> str | None:
    """Return why ``rel`` cannot be written in ``dest`` (a parent in the way), or None.

    A parent that is a symbolic link is never written through (as git does, so a
    link cannot lead an update outside the project); a parent that is a file is in
    the way unless it is a generated file about to be removed.
    """
    parts = rel.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        parent = "/".join(parts[:depth])
        st = _lstat(dest / parent)
        if st is None:
            return None  # missing: it and everything below it will be created
        if stat.S_ISLNK(st.st_mode):
            return f"{parent} is a symbolic link; nothing is written through it"
        if not stat.S_ISDIR(st.st_mode) and parent not in removing:
            return f"{parent} is not a folder"
    return None


@dataclass
class _Plan:
    removals: list[str] = field(default_factory=list)
    #: (path of the generated file, path written): the same, or with NEW_SUFFIX.
    writes: list[tuple[str, str]] = field(default_factory=list)
    report: UpdateReport = field(default_factory=UpdateReport)


def _plan(fresh: Path, dest: Path, old: dict[str, str]) -> _Plan:
    """Decide every step from the files as they are now; nothing is written here."""
    plan = _Plan()
    report = plan.report
    fresh_files = _fresh_files(fresh)
    for rel in sorted(set(old) - set(fresh_files)):
        st = _lstat(dest / rel)
        if st is None:
            continue
        blocked = _blocking_parent(dest, rel, set())
        if blocked is not None:
            report.kept.append(Kept(rel, f"no longer generated; {blocked}"))
        elif stat.S_ISREG(st.st_mode) and _digest(dest / rel) == old[rel]:
            plan.removals.append(rel)
            report.removed.append(rel)
        else:
            report.kept.append(Kept(rel, "no longer generated; you changed it"))
    removing = set(plan.removals)
    for rel in fresh_files:
        target = dest / rel
        st = _lstat(target)
        # Reading follows a link (harmless); writing never does.
        current = _digest(target) if target.is_file() else None
        if current is not None and current == _digest(fresh / rel):
            report.unchanged.append(rel)
            continue
        blocked = _blocking_parent(dest, rel, removing)
        if blocked is not None:
            report.kept.append(Kept(rel, f"not written: {blocked}"))
        elif st is None:
            plan.writes.append((rel, rel))
            report.added.append(rel)
        elif stat.S_ISREG(st.st_mode) and old.get(rel) == current:
            plan.writes.append((rel, rel))
            report.replaced.append(rel)
        else:
            if stat.S_ISLNK(st.st_mode):
                reason = "a symbolic link"
            elif not stat.S_ISREG(st.st_mode):
                reason = "not a regular file"
            elif rel in old:
                reason = "you changed it since it was rendered"
            else:
                reason = "it differs from the new version and no earlier render recorded it"
            beside = rel + NEW_SUFFIX
            beside_st = _lstat(dest / beside)
            if beside_st is not None and not stat.S_ISREG(beside_st.st_mode):
                report.kept.append(Kept(rel, f"{reason}; {beside} is in the way"))
            else:
                plan.writes.append((rel, beside))
                report.kept.append(Kept(rel, reason, beside))
    return plan


def _install(source: Path, target: Path) -> None:
    """Put a copy of ``source`` (bytes and mode) at ``target``, all or nothing."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        shutil.copymode(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _make_parents(fresh: Path, dest: Path, rel: str) -> None:
    """Create the missing folders of ``rel`` in ``dest``, with the fresh render's modes."""
    parts = rel.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        parent = "/".join(parts[:depth])
        if not (dest / parent).is_dir():
            (dest / parent).mkdir()
            shutil.copymode(fresh / parent, dest / parent)


def _prune(dest: Path, removed: list[str]) -> None:
    """Remove the folders that removing generated files left empty (never ``dest``)."""
    parents: set[str] = set()
    for rel in removed:
        parts = rel.split("/")[:-1]
        parents.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    for parent in sorted(parents, key=lambda p: p.count("/"), reverse=True):
        # A folder that still holds something (the user's files) stays.
        with contextlib.suppress(OSError):
            (dest / parent).rmdir()


def update_project(fresh: Path, dest: Path) -> UpdateReport:
    """Bring the project ``dest`` up to the fresh render ``fresh``; see the module doc."""
    old = read_manifest(dest / ANSWERS_FILE)
    try:
        plan = _plan(fresh, dest, old)
    except OSError as exc:
        where = exc.filename or dest
        raise RenderError(f"cannot read {where}: {exc.strerror or exc} (nothing changed)") from exc
    done = 0
    try:
        # Removals first: a generated file that became a folder must make room.
        for rel in plan.removals:
            (dest / rel).unlink()
            done += 1
        for rel, written in plan.writes:
            _make_parents(fresh, dest, written)
            _install(fresh / rel, dest / written)
            done += 1
        _prune(dest, plan.removals)
        # Last: until this manifest is in place, the old one still describes every file
        # that was not replaced, so running the command again finishes the update.
        _install(fresh / ANSWERS_FILE, dest / ANSWERS_FILE)
    except OSError as exc:
        where = exc.filename or dest
        raise RenderError(
            f"cannot update {where}: {exc.strerror or exc} ({done} files changed so far;"
            " run the same command again once this is fixed)"
        ) from exc
    return plan.report
