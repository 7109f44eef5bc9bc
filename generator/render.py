"""Render validated options into a project directory, atomically.

The template is rendered through cookiecutter's own ``generate_files`` with a context
built the way ``cookiecutter.main.cookiecutter`` builds it, but with every answer
already resolved: cookiecutter's ``prompt_for_config`` would evaluate each value as a
Jinja template, and a user's text must never be code. A template whose project folder
holds bytecode is rendered from a copy without it: pip compiles every ``.py`` file it
installs, the template's too, and a project must not carry ``__pycache__`` that plain
cookiecutter would not.

A new project is rendered in a temporary folder beside the destination (same file
system, so the final move is a rename); the destination appears only when everything,
hooks included, succeeded. Into an existing empty folder (``servegen new .``) the
render goes to a temporary folder inside it, and its entries are moved in only when it
succeeded (removed again if a move fails), so the folder ends up full or empty. Into
an existing project (``--force``) the render goes to a temporary folder too, and
:mod:`generator.update` then replaces only the generated files the user did not
change; the destination folder itself is never moved.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import RenderError, UsageError
from generator.options import Options
from generator.template import on_sys_path
from generator.update import ANSWERS_FILE, UpdateReport, update_project

#: Folder of per-project secrets written by the template's post-generation hook.
SECRETS_DIR = "secrets"

#: What an installer adds to a packaged template and no project may carry: bytecode
#: (pip compiles every ``.py`` file it installs, the template's too).
BYTECODE_DIR = "__pycache__"
BYTECODE_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Rendered:
    """A rendered project: where it is and, when it existed already, what changed."""

    path: Path
    #: None for a new project; what the update did for an existing one.
    update: UpdateReport | None = None


def build_context(options: Options, output_dir: Path) -> OrderedDict[str, Any]:
    """Return the cookiecutter context for these answers, as cookiecutter would make it.

    Private keys of ``cookiecutter.json`` (``_extensions``, ``_template_version``...)
    are kept as written, ``__prompts__`` is dropped (cookiecutter pops it while
    prompting), and the four keys cookiecutter adds (``_template``, ``_output_dir``,
    ``_repo_dir``, ``_checkout``) are set so hooks see what they would see there.
    """
    template = options.template
    values = options.context_values()
    answers: OrderedDict[str, Any] = OrderedDict()
    for key, raw in template.spec.items():
        if key == "__prompts__":
            continue
        answers[key] = values.get(key, raw)
    answers["_template"] = str(template.path)
    answers["_output_dir"] = str(output_dir)
    answers["_repo_dir"] = str(template.path)
    answers["_checkout"] = None
    context: OrderedDict[str, Any] = OrderedDict()
    context["cookiecutter"] = answers
    context["_cookiecutter"] = {k: v for k, v in template.spec.items() if not k.startswith("_")}
    return context


#: What a destination is, as :func:`check_destination` tells: nothing there yet, an
#: empty folder (``servegen new .`` in a fresh folder), or a project to render again.
NEW, EMPTY, PROJECT = "new", "empty", "project"


def check_destination(dest: Path, force: bool) -> str:
    """Return what ``dest`` is (:data:`NEW`, :data:`EMPTY` or :data:`PROJECT`).

    Raises UsageError when it may not be rendered into: something other than a folder,
    or a non-empty folder without ``force`` or that is not a servegen project.
    """
    dest = Path(os.path.abspath(dest))
    if not dest.exists() and not dest.is_symlink():
        return NEW
    if not dest.is_dir() or dest.is_symlink():
        if not force:
            raise UsageError(f"{dest} already exists (use --force to render into it again)")
        raise UsageError(f"{dest} exists and is not a directory; refusing to render into it")
    try:
        empty = not any(dest.iterdir())
    except OSError as exc:
        raise UsageError(f"cannot read {dest}: {exc.strerror or exc}") from exc
    if empty:
        return EMPTY
    if not force:
        raise UsageError(f"{dest} already exists (use --force to render into it again)")
    # --force renders into a servegen project, never an arbitrary tree: a mistyped
    # destination must not get files mixed into someone's folder.
    if not (dest / ANSWERS_FILE).is_file():
        raise UsageError(
            f"{dest} is not a servegen project (no {ANSWERS_FILE}); refusing to render into it"
        )
    return PROJECT


def _missing_parents(path: Path) -> list[Path]:
    missing = []
    for parent in path.parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


def render(options: Options, dest: Path, *, force: bool = False) -> Rendered:
    """Render the project into ``dest``; return where it is and what changed.

    An empty folder is filled (the folder itself stays, so a shell inside it keeps
    working). Any other existing ``dest`` is refused unless ``force``. With ``force``
    the project is rendered in a temporary folder, over a copy of the old ``secrets/``
    (so passwords, and the database volume that uses them, survive), and ``dest`` is
    then updated file by file (:func:`generator.update.update_project`): only generated
    files the user did not change are replaced, nothing else in ``dest`` is touched.
    Any failure of the render itself leaves ``dest`` as it was and removes what this
    call created.
    """
    dest = Path(os.path.abspath(dest))
    kind = check_destination(dest, force)
    if kind == PROJECT:
        return Rendered(dest, _render_again(options, dest))
    if kind == EMPTY:
        return Rendered(_render_into_empty(options, dest))
    created_parents = _missing_parents(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".servegen-new-", dir=dest.parent))
    except OSError as exc:
        _remove_created(created_parents)
        raise RenderError(f"cannot create {dest.parent}: {exc.strerror or exc}") from exc
    done = False
    try:
        project = _generate(options, staging, keep_secrets=None)
        try:
            os.rename(project, dest)
        except OSError as exc:
            raise RenderError(f"cannot move the project to {dest}: {exc.strerror or exc}") from exc
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done:
            _remove_created(created_parents)
    return Rendered(dest)


def _render_into_empty(options: Options, dest: Path) -> Path:
    """Render a new project into the existing empty folder ``dest``, all or nothing.

    The render goes to a hidden temporary folder inside ``dest`` (same file system, and
    the folder above need not be writable), then each top-level entry is renamed into
    ``dest``. ``dest`` was empty, so on any failure every entry this call moved in is
    removed again and ``dest`` is left empty.
    """
    try:
        staging = Path(tempfile.mkdtemp(prefix=".servegen-new-", dir=dest))
    except OSError as exc:
        raise RenderError(f"cannot write in {dest}: {exc.strerror or exc}") from exc
    moved: list[Path] = []
    done = False
    try:
        project = _generate(options, staging, keep_secrets=None)
        for entry in sorted(project.iterdir()):
            target = dest / entry.name
            if target.exists() or target.is_symlink():  # something appeared meanwhile
                raise RenderError(f"{target} appeared while rendering; {dest} is not empty")
            try:
                os.rename(entry, target)
            except OSError as exc:
                raise RenderError(f"cannot move {entry.name} into {dest}: {exc}") from exc
            moved.append(target)
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done:
            for target in moved:
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
    return dest


def _render_again(options: Options, dest: Path) -> UpdateReport:
    """Render into a temporary folder, then update the existing project ``dest`` from it."""
    # The system's temporary folder, not dest's parent: nothing is renamed into place,
    # and the folder that holds the project need not be writable.
    try:
        staging = Path(tempfile.mkdtemp(prefix="servegen-new-"))
    except OSError as exc:
        raise RenderError(f"cannot create a temporary folder: {exc.strerror or exc}") from exc
    try:
        project = _generate(options, staging, keep_secrets=dest / SECRETS_DIR)
        return update_project(project, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy_passwords(source: Path, dest: Path) -> None:
    """Copy the password files (``secrets/*.txt``, regular files only) into ``dest``.

    Only those: whatever else the user put in ``secrets/`` (a folder in place of the
    README, a link) stays out of the render, so the render is the template's own.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.txt")):
        if path.is_file() and not path.is_symlink():
            shutil.copy2(path, dest / path.name)


def _generate(options: Options, staging: Path, keep_secrets: Path | None) -> Path:
    """Run cookiecutter's generator (hooks included) into ``staging``.

    With ``keep_secrets``, the old project's secrets are put in place first and the
    project is rendered over them, exactly as cookiecutter's own re-render
    (``overwrite_if_exists``) does, so the post-generation hook keeps those passwords.
    """
    from cookiecutter.exceptions import CookiecutterException, FailedHookException
    from cookiecutter.generate import generate_files
    from jinja2 import TemplateError

    context = build_context(options, staging)
    expected = staging / options.slug
    try:
        source = _without_bytecode(options.template.path, staging / ".template")
        if keep_secrets is not None and keep_secrets.is_dir():
            _copy_passwords(keep_secrets, expected / SECRETS_DIR)
    except OSError as exc:
        raise RenderError(f"cannot prepare the render in {staging}: {exc}") from exc
    hook_output = _Captured()
    try:
        with (
            on_sys_path(options.template.path),
            _quiet_cookiecutter(),
            _hook_scripts_in(staging),
            _hook_stderr() as hook_output,
        ):
            project = Path(
                generate_files(
                    repo_dir=str(source),
                    context=context,
                    output_dir=str(staging),
                    overwrite_if_exists=expected.exists(),
                    accept_hooks=True,
                )
            )
    except FailedHookException as exc:
        # A hook refuses an input (its own "error: ..." line says which); say that line.
        reported = [ln for ln in hook_output.text().splitlines() if ln.startswith("error: ")]
        if reported:
            raise UsageError(reported[-1].removeprefix("error: ")) from exc
        raise RenderError(f"template {options.template.name}: {exc}") from exc
    except CookiecutterException as exc:
        raise RenderError(f"template {options.template.name} failed to render: {exc}") from exc
    except TemplateError as exc:
        raise RenderError(f"template {options.template.name} has a Jinja error: {exc}") from exc
    except OSError as exc:
        raise RenderError(f"cannot write the project: {exc}") from exc
    finally:
        # Warnings of a hook that passed still reach the user.
        for line in hook_output.text().splitlines():
            if line.strip() and not line.startswith("error: "):
                print(line, file=sys.stderr)
    if project != expected:
        raise RenderError(f"template rendered {project.name!r}, expected {expected.name!r}")
    return project


def _without_bytecode(template: Path, into: Path) -> Path:
    """Return a template folder without bytecode: ``template``, or a copy in ``into``.

    cookiecutter copies every file of the template's project folder, binary ones
    included, so ``__pycache__`` compiled into an installed template would land in the
    project. When the project folder holds none (a checkout), the template is used as
    it is; otherwise it is copied without bytecode (a few milliseconds: the template
    is small). The context still names the real template (``_template``,
    ``_repo_dir``), and its Jinja extension and rules are still imported from there.
    """
    # The project folder is the one cookiecutter renders; bytecode elsewhere (beside
    # the rules module, in hooks/) never reaches a project.
    projects = [p for p in template.iterdir() if p.is_dir() and "{" in p.name]
    if not any(_holds_bytecode(folder) for folder in projects):
        return template
    patterns = [BYTECODE_DIR, *(f"*{suffix}" for suffix in BYTECODE_SUFFIXES)]
    shutil.copytree(template, into, ignore=shutil.ignore_patterns(*patterns))
    return into


def _holds_bytecode(folder: Path) -> bool:
    for _root, dirs, files in os.walk(folder):
        if BYTECODE_DIR in dirs or any(name.endswith(BYTECODE_SUFFIXES) for name in files):
            return True
    return False


@contextmanager
def _hook_scripts_in(staging: Path) -> Iterator[None]:
    """Have cookiecutter write its rendered hook scripts inside ``staging``.

    cookiecutter renders each hook into a file of the system's temporary folder and
    never removes it; inside ``staging`` it goes when the render is done (the hooks
    also remove their own copy, which covers plain cookiecutter).
    """
    folder = staging / ".hooks"
    folder.mkdir(exist_ok=True)
    saved = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = saved


@contextmanager
def _quiet_cookiecutter() -> Iterator[None]:
    """Keep cookiecutter's log records (a traceback on a failed hook) off the terminal.

    Without a handler of its own, Python's last-resort handler prints them; servegen
    reports the failure itself, in one line.
    """
    logger = logging.getLogger("cookiecutter")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    saved = logger.propagate
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved


class _Captured:
    """Text a hook wrote to file descriptor 2, available once the block ended."""

    def __init__(self) -> None:
        self._text = ""

    def text(self) -> str:
        """Return what was captured (empty while capturing)."""
        return self._text


@contextmanager
def _hook_stderr() -> Iterator[_Captured]:
    """Capture file descriptor 2, where cookiecutter's hook processes write.

    Hooks run as child processes that inherit the descriptor, so replacing
    ``sys.stderr`` would not see their output; redirecting the descriptor does.
    """
    captured = _Captured()
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured._text = sink.read().decode("utf-8", errors="replace")


def _remove_created(parents: list[Path]) -> None:
    # ``parents`` lists the folders this call created, deepest first.
    for parent in parents:
        try:
            parent.rmdir()
        except OSError:
            break
