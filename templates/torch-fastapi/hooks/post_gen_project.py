"""Drop the files the chosen task does not use, and give the project its own passwords.

cookiecutter renders this script with Jinja and runs it in the generated project folder
after the files are written. It removes the files of the other task (see ``UNUSED``),
then creates ``secrets/db_password.txt`` (the database user's password) and
``secrets/db_root_password.txt`` (the MySQL root password), which compose mounts as
secrets and the project's .gitignore keeps out of version control.

- Each password is random (``secrets.token_urlsafe``, 256 bits), so two projects never
  share one.
- A file that already holds a password is kept: rendering the project again over
  itself (``--force``, ``overwrite_if_exists``) must not change the password of a
  database whose volume already exists.
- ``SERVEGEN_DB_PASSWORD`` / ``SERVEGEN_DB_ROOT_PASSWORD``, when set, are used instead
  of random values for files that do not exist yet (the user chose to share them).

Standard library only: plain cookiecutter must work with nothing else installed.
"""

from __future__ import annotations

import os
import secrets
import string
import sys
from pathlib import Path

#: The project's task, as answered.
TASK = {{ cookiecutter.task | py_str }}
#: Files (relative to the project) that a task does not use; ``{pkg}`` is the package.
UNUSED = {
    "tensor": ["src/{pkg}/images.py", "tests/test_images.py", "examples/image.jpg"],
    "image-classification": ["src/{pkg}/tensors.py", "tests/test_tensors.py"],
}
PACKAGE = {{ cookiecutter.package_name | py_str }}

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


def write_atomically(path: Path, value: str) -> None:
    """Write ``value`` (no trailing newline) to ``path`` with FILE_MODE, all or nothing."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
            handle.flush()
            os.fsync(handle.fileno())
        # Set explicitly: the process umask must not narrow the mode (see FILE_MODE).
        os.chmod(tmp, FILE_MODE)
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
        write_atomically(path, supplied.get(name) or secrets.token_urlsafe(32))
    return warnings


def remove_unused(project_dir: Path, task: str) -> None:
    """Delete the files that ``task`` does not use (kept in the template for the other)."""
    for name in UNUSED[task]:
        (project_dir / name.format(pkg=PACKAGE)).unlink(missing_ok=True)


def main() -> int:
    """Tidy and create the secrets of the project in the current folder; 0 on success."""
    remove_unused(Path.cwd(), TASK)
    try:
        warnings = make_secrets(Path.cwd(), dict(os.environ))
    except SecretError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: cannot write secrets/: {err}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(warning, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
