"""Tidy the new project, give it its own database passwords, record what was generated.

cookiecutter renders this script with Jinja and runs it in the generated project folder
after the files are written. It does three things:

1. It removes the files the chosen task does not use (see ``UNUSED``), and those of
   a yes/no option that is off (see ``OPTIONAL``): the template holds them all.
2. It creates ``secrets/db_password.txt`` (the database user's password) and
   ``secrets/db_root_password.txt`` (the MySQL root password), which compose mounts as
   secrets and the project's .gitignore keeps out of version control.
3. It appends a ``_files:`` manifest to ``.servegen-answers.yml``: the sha256 of every
   file the template generated (POSIX relative path -> hex digest, sorted), leaving out
   the random passwords (they differ in every project) and the answers file itself.
   ``servegen new --force`` reads it to tell a file the user changed (never
   overwritten) from one it may replace or remove. Only files that a template file
   renders to are listed, so a user's own files never enter the manifest, even when
   plain cookiecutter renders over an existing folder (``overwrite_if_exists``).

- Each password is random (``secrets.token_urlsafe``, 256 bits), so two projects never
  share one.
- A file that already holds a password is kept: rendering the project again over
  itself (``--force``, ``overwrite_if_exists``) must not change the password of a
  database whose volume already exists.
- ``SERVEGEN_DB_PASSWORD`` / ``SERVEGEN_DB_ROOT_PASSWORD``, when set, are used instead
  of random values for files that do not exist yet (the user chose to share them).

Standard library only: plain cookiecutter must work with nothing else installed. The
answers arrive as one JSON document inside a Python string literal (as in the
pre-generation hook), so no answer can change this code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
import string
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ANSWERS = json.loads({{ cookiecutter | json_str | py_str }})
TEMPLATE_DIR = Path({{ servegen_template_dir | py_str }})
#: Files (relative to the project) that a task does not use; ``{pkg}`` is the package.
UNUSED = {
    "tensor": ["src/{pkg}/images.py", "tests/test_images.py", "examples/image.jpg"],
    "image-classification": ["src/{pkg}/tensors.py", "tests/test_tensors.py"],
}
#: yes/no option -> files and folders (relative to the project) rendered only when it is on.
OPTIONAL = {
    "kubernetes": ["deploy/k8s", "docs/kubernetes.md"],
}

#: file name in secrets/ -> environment variable that may supply its value
PASSWORDS = {
    "db_password.txt": "SERVEGEN_DB_PASSWORD",
    "db_root_password.txt": "SERVEGEN_DB_ROOT_PASSWORD",
}
MIN_LEN = 12
MAX_LEN = 128
#: Characters that init scripts, shells, .env files and URLs all take literally.
PUNCTUATION = "-_.~+=,:@^*!?/"
ALLOWED = frozenset(string.ascii_letters + string.digits + PUNCTUATION)

# Modes: compose bind-mounts a file secret into the container with the host file's
# owner and mode, and the container reads it as its own non-root user (mysql, or the
# service's UID 10001), whose UID differs from the host user who owns the file. So
# the file must be readable by others (0644), and the folder is closed to every other
# user of the host (0700): the mount is made by the Docker daemon, which does not need
# to traverse the folder as the container's user.
# Ref: https://docs.docker.com/compose/how-tos/use-secrets/
DIR_MODE = 0o700
FILE_MODE = 0o644


class SecretError(Exception):
    """A supplied password cannot be used; ``str()`` is one line for the user."""


def check_supplied(variable: str, value: str) -> str:
    """Return a password given through the environment, or raise SecretError."""
    if not MIN_LEN <= len(value) <= MAX_LEN:
        raise SecretError(f"{variable} must be {MIN_LEN} to {MAX_LEN} characters long")
    bad = sorted({ch for ch in value if ch not in ALLOWED})
    if bad:
        shown = " ".join(repr(ch) for ch in bad[:5])
        raise SecretError(
            f"{variable} holds characters that are not allowed ({shown}); "
            f"use letters, digits and {' '.join(PUNCTUATION)}"
        )
    return value


def existing_password(path: Path) -> str | None:
    """Return the password already in ``path``, or None when there is none to keep."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return text if text.strip() else None


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``, all or nothing."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # Set explicitly: the process umask must not narrow the mode (see FILE_MODE).
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_secrets(project_dir: Path, environ: dict[str, str]) -> list[str]:
    """Create the missing password files; return warnings for the user."""
    folder = project_dir / "secrets"
    folder.mkdir(exist_ok=True)
    os.chmod(folder, DIR_MODE)
    # Check every supplied value before writing anything.
    supplied = {
        name: check_supplied(variable, environ[variable])
        for name, variable in PASSWORDS.items()
        if environ.get(variable)
    }
    warnings = []
    for name, variable in PASSWORDS.items():
        path = folder / name
        if existing_password(path) is not None:
            os.chmod(path, FILE_MODE)
            if name in supplied:
                warnings.append(
                    f"warning: secrets/{name} already exists and was kept; {variable} was "
                    "not used (delete the file to replace it)"
                )
            continue
        value = supplied.get(name) or secrets.token_urlsafe(32)
        write_atomically(path, value.encode("utf-8"), FILE_MODE)
    return warnings


# -------------------------------------------------------------------- the manifest

ANSWERS_FILE = ".servegen-answers.yml"
MANIFEST_KEY = "_files"
#: Bytecode that an installer may have compiled into an installed copy of the template
#: (pip compiles every .py file it installs); it is never part of a project.
BYTECODE_DIR = "__pycache__"
BYTECODE_SUFFIXES = (".pyc", ".pyo")
#: A path segment naming one answer, the way the template's folder names do.
ANSWER_REFERENCE = re.compile(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}")
#: Any other Jinja still in a segment once the answers are filled in: a brace followed by
#: a brace, a percent sign or a hash (written as escapes: this file is itself rendered).
OTHER_JINJA = re.compile(r"\{[\x7b\x25\x23]")


def project_template(template_dir: Path) -> Path:
    """Return the template's project folder (the one cookiecutter renders)."""
    for child in sorted(template_dir.iterdir()):
        # The test cookiecutter itself uses to find it (cookiecutter.find).
        if child.is_dir() and "cookiecutter" in child.name and "{" in child.name:
            return child
    raise FileNotFoundError(f"no project folder in template {template_dir}")


def segment_name(segment: str, answers: dict[str, object]) -> str | None:
    """Return the name a template path segment renders to; None when it is not plain.

    A segment that names an answer (the package folder) is filled in. Any other Jinja
    (a filter, a condition) cannot be evaluated without Jinja: such a segment then
    matches every name in its folder.
    """

    def fill(match: re.Match[str]) -> str:
        key = match[1]
        return str(answers[key]) if key in answers else match[0]

    name = ANSWER_REFERENCE.sub(fill, segment)
    return None if OTHER_JINJA.search(name) else name


def template_files(folder: Path) -> Iterator[list[str]]:
    """Yield the path segments of every file below ``folder``, bytecode left out."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != BYTECODE_DIR)
        parts = list(Path(root).relative_to(folder).parts)
        for name in sorted(files):
            if not name.endswith(BYTECODE_SUFFIXES):
                yield [*parts, name]


def rendered_matches(base: Path, segments: list[str], answers: dict[str, object]) -> Iterator[Path]:
    """Yield the regular files below ``base`` that ``segments`` render to."""
    name = segment_name(segments[0], answers)
    if name is None:
        candidates = sorted(base.iterdir()) if base.is_dir() else []
    else:
        candidates = [base / name]
    for candidate in candidates:
        # cookiecutter writes files and folders, never symbolic links.
        if candidate.is_symlink():
            continue
        if len(segments) > 1:
            if candidate.is_dir():
                yield from rendered_matches(candidate, segments[1:], answers)
        elif candidate.is_file():
            yield candidate


def generated_files(project_dir: Path, template_dir: Path, answers: dict[str, object]) -> list[str]:
    """Return the sorted POSIX paths of the files the template generated here.

    The random passwords and the answers file are left out (see the module docstring).
    """
    left_out = {ANSWERS_FILE, *(f"secrets/{name}" for name in PASSWORDS)}
    found = set()
    for segments in template_files(project_template(template_dir)):
        for path in rendered_matches(project_dir, segments, answers):
            rel = path.relative_to(project_dir).as_posix()
            if rel not in left_out:
                found.add(rel)
    return sorted(found)


def yaml_quoted(text: str) -> str:
    """Quote text as a YAML double-quoted scalar: printable ASCII as is, the rest escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def manifest_text(project_dir: Path, files: list[str]) -> str:
    """Return the ``_files:`` block: each file's quoted path and sha256, in order."""
    lines = [MANIFEST_KEY + (":" if files else ": {}")]
    for rel in files:
        digest = hashlib.sha256((project_dir / rel).read_bytes()).hexdigest()
        # Quoted: a digest of digits only would read back as a YAML integer.
        lines.append(f"  {yaml_quoted(rel)}: {yaml_quoted(digest)}")
    return "\n".join(lines) + "\n"


def record_manifest(project_dir: Path, template_dir: Path, answers: dict[str, object]) -> None:
    """Append the manifest of the generated files to the project's answers file."""
    answers_file = project_dir / ANSWERS_FILE
    text = answers_file.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    files = generated_files(project_dir, template_dir, answers)
    data = (text + manifest_text(project_dir, files)).encode("utf-8")
    write_atomically(answers_file, data, stat.S_IMODE(answers_file.stat().st_mode))


def is_on(key: str, answers: dict[str, object]) -> bool:
    """Read a yes/no answer the way the template's rules do (a bool, or yes/no words)."""
    sys.path.insert(0, str(TEMPLATE_DIR))
    try:
        import servegen_rules
    finally:
        sys.path.remove(str(TEMPLATE_DIR))
    return bool(servegen_rules.check_bool(key, answers[key]))


def remove_unused(project_dir: Path, answers: dict[str, object]) -> None:
    """Delete the files that the project's task does not use."""
    for name in UNUSED[str(answers["task"])]:
        (project_dir / name.format(pkg=answers["package_name"])).unlink(missing_ok=True)


def remove_optional(project_dir: Path, template_dir: Path, answers: dict[str, object]) -> None:
    """Delete what the yes/no options that are off would have added.

    Only the files that template files rendered to go, then the folders that leaves
    empty: a user's own file in such a folder (plain cookiecutter can render over an
    existing project) stays, and so does its folder.
    """
    off = [name for key, names in OPTIONAL.items() if not is_on(key, answers) for name in names]
    if not off:
        return
    emptied = set()
    for segments in template_files(project_template(template_dir)):
        rel = "/".join(segments)
        if not any(rel == name or rel.startswith(name + "/") for name in off):
            continue
        for path in rendered_matches(project_dir, segments, answers):
            path.unlink()
            emptied.update(p for p in path.parents if project_dir in p.parents)
    for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def forget_rendered_copy() -> None:
    """Remove this script when it is cookiecutter's rendered copy in the temporary folder.

    cookiecutter renders a hook into a temporary file, runs it, and leaves the file
    behind, answers and all; one stray file per render adds up. The template's own
    ``hooks/`` file is never removed.
    """
    here = Path(__file__).resolve()
    if here.parent == Path(tempfile.gettempdir()).resolve() and here.name.startswith("tmp"):
        here.unlink(missing_ok=True)


def main() -> int:
    """Tidy the project, create its secrets, then record its generated files; 0 on success."""
    forget_rendered_copy()
    remove_unused(Path.cwd(), ANSWERS)
    remove_optional(Path.cwd(), TEMPLATE_DIR, ANSWERS)
    try:
        warnings = make_secrets(Path.cwd(), dict(os.environ))
    except SecretError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: cannot write secrets/: {err}", file=sys.stderr)
        return 1
    try:
        record_manifest(Path.cwd(), TEMPLATE_DIR, ANSWERS)
    except OSError as err:
        print(f"error: cannot record the generated files in {ANSWERS_FILE}: {err}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(warning, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
