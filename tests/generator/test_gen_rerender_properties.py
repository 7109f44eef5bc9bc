"""Property test: whatever the user did to a project, rendering again loses nothing.

hypothesis builds random trees of user files on top of a rendered project: files with
random names (any character a file name may hold) in new and generated folders,
names that collide with generated files and folders (also those that only the new
render generates), edits, deletions, modes, symbolic links, and generated files
replaced by folders. The project is then rendered again with the same answers, a
changed port (new content for some files) or a changed package (a new file set). The
outcome is checked against the rules, path by path:

- a generated file equal to the new version is left as it was (mode included);
- one the user did not change is replaced by the new version (bytes and mode);
- one the user changed, or that is in the way, is kept as it was, the new version is
  written beside it as ``<name>.servegen-new`` and it is listed as kept;
- a file no longer generated is removed when unchanged, otherwise kept and listed;
- everything else (files, links, folders, modes) is exactly as it was;
- the exit code is 6 when anything was kept, else 0.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from gen_helpers import render, servegen
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_gen_rerender import ANSWERS, NEW, Entry, manifest, snapshot

BASE = {"project_name": "Fraud Scorer"}
#: The recorded answers hold the derived db_name, so the clean renders name it too.
VARIANTS: dict[str, dict[str, str]] = {
    "same": {},
    "port": {"api_port": "9001"},
    "package": {"package_name": "other_pkg"},
}
SECRET = re.compile(r"secrets/[^/]+\.txt")

FOLDERS = ["", "src", "src/fraud_scorer", "src/other_pkg", "docs", "tests", "notes/deep", ".git"]
COLLIDING = [
    "app.py", "model.py", "__init__.py", "README.md", "Makefile", "containers.md",
    "other_pkg", "fraud_scorer", "docs", "src", ".env", "models",
]  # fmt: skip
NAME_CHARS = st.characters(exclude_characters="/\0", exclude_categories=["Cs"])
RANDOM_NAME = st.text(NAME_CHARS, min_size=1, max_size=10).filter(
    # "." and ".." are not names; <name>.servegen-new belongs to servegen (documented);
    # a file name holds at most 255 bytes.
    lambda n: n not in (".", "..") and not n.endswith(NEW) and len(n.encode()) <= 255
)
NAME = st.one_of(st.sampled_from(COLLIDING), RANDOM_NAME)
FOLDER = st.sampled_from(FOLDERS)
GENERATED = st.integers(min_value=0, max_value=10_000)  # an index into the manifest

OPS = st.one_of(
    st.tuples(
        st.just("file"),
        FOLDER,
        NAME,
        st.binary(max_size=64),
        st.sampled_from([0o644, 0o600, 0o755]),
    ),
    st.tuples(st.just("edit"), GENERATED, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("chmod"), GENERATED),
    st.tuples(st.just("delete"), GENERATED),
    st.tuples(st.just("folder_over"), GENERATED, NAME),
    st.tuples(st.just("link"), FOLDER, NAME, st.sampled_from(["README.md", "fraud_scorer", "/x"])),
    st.tuples(st.just("empty_folder"), FOLDER, NAME),
)


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The base project, and a clean render of each variant's answers."""
    root = tmp_path_factory.mktemp("rerender")
    out = {"base": render(BASE, root / "base")}
    for name, extra in VARIANTS.items():
        out[name] = render({**BASE, "db_name": "fraud_scorer", **extra}, root / name)
    return out


def apply_ops(project: Path, ops: list[tuple[Any, ...]], generated: list[str]) -> None:
    """Do what a user might do; a step that something else is in the way of is skipped."""
    for op in ops:
        kind = op[0]
        if kind in ("edit", "chmod", "delete", "folder_over"):
            path = project / generated[op[1] % len(generated)]
            if path.is_symlink() or not path.is_file():
                continue
        try:
            if kind == "file":
                _, folder, name, content, mode = op
                path = project / folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.is_symlink() or path.is_dir():
                    continue
                path.write_bytes(content)
                path.chmod(mode)
            elif kind == "edit":
                with path.open("ab") as handle:
                    handle.write(op[2])
            elif kind == "chmod":
                path.chmod(0o755 if path.stat().st_mode & 0o100 == 0 else 0o644)
            elif kind == "delete":
                path.unlink()
            elif kind == "folder_over":
                path.unlink()
                path.mkdir()
                (path / op[2]).write_text("the user's file\n")
            elif kind == "link":
                _, folder, name, target = op
                (project / folder).mkdir(parents=True, exist_ok=True)
                (project / folder / name).symlink_to(target)
            elif kind == "empty_folder":
                (project / op[1] / op[2]).mkdir(parents=True)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blocked(before: dict[str, Entry], rel: str) -> bool:
    """A parent of ``rel`` is a link or a file: nothing may be written there."""
    parts = rel.split("/")[:-1]
    parents = ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
    return any(p in before and before[p][0] != "dir" for p in parents)


def check_rules(
    before: dict[str, Entry],
    after: dict[str, Entry],
    clean: dict[str, Entry],
    old: dict[str, str],
) -> set[str]:
    """Assert the rules path by path (see the module docstring); return what was kept."""
    new = {
        rel: entry
        for rel, entry in clean.items()
        if entry[0] == "file" and not SECRET.fullmatch(rel) and rel != ANSWERS
    }
    kept = set()
    for rel, entry in new.items():
        b, a = before.get(rel), after.get(rel)
        if b is None:
            if _blocked(before, rel):
                kept.add(rel)
                assert a is None and rel + NEW not in after, rel
            else:
                assert a == entry, f"{rel} was not added"
        elif b[0] == "file" and b[2] == entry[2]:
            assert a == b, f"{rel} was equal to the new version, yet touched"
        elif b[0] == "file" and _sha(b[2]) == old.get(rel):
            assert a == entry, f"{rel} was not changed by the user, yet not replaced"
        else:
            kept.add(rel)
            assert a == b, f"{rel} was changed by the user, yet not kept"
            assert after.get(rel + NEW) == entry, f"{rel}{NEW} missing or wrong"
    for rel in set(old) - set(new):
        b = before.get(rel)
        if b is None or (b[0] == "file" and _sha(b[2]) == old[rel]):
            assert rel not in after, f"{rel} is no longer generated and unchanged, yet kept"
        else:
            kept.add(rel)
            assert after.get(rel) == b, f"{rel} is no longer generated but changed, yet lost"
    assert after[ANSWERS][2] == clean[ANSWERS][2]
    ours = set(new) | set(old) | {ANSWERS} | {rel + NEW for rel in new}
    for rel, b in before.items():
        if rel in ours:
            continue
        emptied = b[0] == "dir" and any(o.startswith(rel + "/") for o in old)
        if emptied and rel not in after:
            continue  # held only generated files that were removed
        assert after.get(rel) == b, f"{rel} is not generated, yet it changed or vanished"
    for rel in set(after) - set(before):
        made_for = any(g.startswith(rel + "/") for g in new)
        assert rel in ours or (after[rel][0] == "dir" and made_for), f"{rel} appeared"
    return kept


#: Each example renders a project (well under a second); SERVEGEN_PROPERTY_EXAMPLES
#: raises the count for a deeper search.
@settings(
    max_examples=int(os.environ.get("SERVEGEN_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(OPS, max_size=12), variant=st.sampled_from(sorted(VARIANTS)))
def test_rendering_again_keeps_every_file_it_does_not_own(
    renders: dict[str, Path], ops: list[tuple[Any, ...]], variant: str
) -> None:
    old = manifest(renders["base"])
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "svc"
        shutil.copytree(renders["base"], project, symlinks=True)
        apply_ops(project, ops, sorted(old))
        before = snapshot(project)
        inode = project.stat().st_ino
        sets = [
            arg for key, value in VARIANTS[variant].items() for arg in ("--set", f"{key}={value}")
        ]
        args = ["new", "svc", "--answers", f"svc/{ANSWERS}", "--force", "--no-input", *sets]
        result = servegen(*args, cwd=Path(tmp))
        after = snapshot(project)
        kept = check_rules(before, after, snapshot(renders[variant]), old)
        assert result.exit_code == (6 if kept else 0), result.output
        event(f"kept: {'some' if kept else 'none'}")
        event(f"variant: {variant}")
        listed = {
            line.removeprefix("kept ").split(" (")[0]
            for line in result.stderr.splitlines()
            if line.startswith("kept ")
        }
        assert listed == kept
        assert project.stat().st_ino == inode
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["svc"]
