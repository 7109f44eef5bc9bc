"""scripts/strip_symbols.py (run by the Dockerfile's builder stage) on real compiled modules."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httptools
import pytest

from conftest import SCRIPTS


def load_script() -> ModuleType:
    """The script, imported as a module from the project's scripts folder."""
    spec = importlib.util.spec_from_file_location("strip_symbols", SCRIPTS / "strip_symbols.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


strip_symbols = load_script()
STRIP = shutil.which("strip")
needs_strip = pytest.mark.skipif(STRIP is None, reason="binutils' strip is not installed here")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site-packages folder holding a copy of httptools (compiled, with a symbol table)."""
    folder = tmp_path / "site-packages"
    shutil.copytree(Path(httptools.__file__).parent, folder / "httptools")
    return folder


def compiled(site: Path) -> list[Path]:
    return sorted((site / "httptools").rglob("*.so"))


def test_the_copied_modules_carry_symbols_worth_stripping(site: Path) -> None:
    files = strip_symbols.candidates(site)
    assert files, "httptools' compiled modules carry a symbol table"
    assert files == [p for p in compiled(site) if strip_symbols.worth_stripping(p)]
    assert ".symtab" in strip_symbols.section_names(files[0])


def test_files_that_are_not_elf_or_are_truncated_have_no_sections(tmp_path: Path) -> None:
    text = tmp_path / "notes.so"
    text.write_text("not a library\n")
    short = tmp_path / "short.so"
    short.write_bytes(b"\x7fELF\x02\x01")
    garbage = tmp_path / "garbage.so"
    garbage.write_bytes(b"\x7fELF\x02\x01" + b"\xff" * 200)
    for path in (text, short, garbage, tmp_path / "missing.so"):
        assert strip_symbols.section_names(path) == []
        assert not strip_symbols.worth_stripping(path)


def test_vendored_libraries_and_symbolic_links_are_left_alone(site: Path) -> None:
    library = compiled(site)[0]
    vendored = site / "somepkg.libs" / "libvendored-1a2b3c.so.1"
    vendored.parent.mkdir()
    shutil.copy2(library, vendored)
    (site / "linked.so").symlink_to(library)
    found = strip_symbols.candidates(site)
    assert vendored not in found
    assert site / "linked.so" not in found
    assert library in found


def test_module_names_follow_the_import_system() -> None:
    site = Path("/venv/site-packages")
    name = strip_symbols.module_name
    assert name(site, site / "pkg/sub/_fast.cpython-311-x86_64-linux-gnu.so") == "pkg.sub._fast"
    assert name(site, site / "pkg/_rust.abi3.so") == "pkg._rust"
    assert name(site, site / "pkg/lib/libthing.so.1") is None
    assert name(site, site / "pkg-1.0.data/_x.abi3.so") is None


@needs_strip
def test_stripping_shrinks_the_modules_and_they_still_import(site: Path) -> None:
    assert STRIP is not None
    before = {p: p.stat().st_size for p in compiled(site)}
    assert strip_symbols.strip_site(sys.executable, site, STRIP) == 0
    assert not strip_symbols.candidates(site), "nothing is left to strip"
    after = {p: p.stat().st_size for p in compiled(site)}
    assert sum(after.values()) < sum(before.values())
    assert not list(site.rglob("*.unstripped")), "no backup is left behind"
    probe = "import sys; sys.path.insert(0, sys.argv[1]); import httptools as h; print(h.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(site)], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith(str(site)), "the stripped copy is what was imported"


def test_a_strip_that_breaks_a_module_is_undone(site: Path, tmp_path: Path) -> None:
    # A "strip" that writes garbage: the modules stop importing, so their originals return.
    broken_strip = tmp_path / "bad-strip"
    broken_strip.write_text('#!/bin/sh\nwhile [ "$1" != -o ]; do shift; done\necho junk > "$2"\n')
    broken_strip.chmod(0o755)
    originals = {p: p.read_bytes() for p in compiled(site)}
    assert strip_symbols.strip_site(sys.executable, site, str(broken_strip)) == 0
    assert {p: p.read_bytes() for p in compiled(site)} == originals
    assert not list(site.rglob("*.unstripped"))


def test_a_module_that_kills_the_interpreter_counts_as_failed_and_the_rest_go_on(
    site: Path,
) -> None:
    (site / "crasher.py").write_text("import os\nos.abort()\n")
    names = ["httptools.parser.parser", "crasher", "missing_module", "httptools.parser.url_parser"]
    found = strip_symbols.importable(sys.executable, site, names)
    assert found == {"httptools.parser.parser", "httptools.parser.url_parser"}


def test_an_interpreter_that_cannot_run_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="cannot run the import check"):
        strip_symbols.importable(str(shutil.which("false")), tmp_path, ["json"])


def test_without_a_strip_program_the_venv_is_left_as_it_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(strip_symbols.shutil, "which", lambda _: None)
    assert strip_symbols.main(tmp_path) == 0
    assert "symbols kept" in capsys.readouterr().err
