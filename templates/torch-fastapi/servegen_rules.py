"""Validation rules and derived values for the torch-fastapi template.

This module is the single home of every rule about the template's answers. It is
imported by the template's ``pre_gen_project`` hook (plain ``cookiecutter`` path), by
its Jinja extension (derived defaults), and by servegen's ``generator.options``, so the
two ways of rendering the template cannot disagree. It uses the standard library only:
plain ``cookiecutter`` must work with nothing but cookiecutter installed.

Names, defaults and choices live in ``cookiecutter.json``; help text, types and checks
live here; the torch/Python compatibility table is data in ``torch_compat.json``.
"""

from __future__ import annotations

import json
import keyword
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parent

#: Packages the generated service imports or that its tooling installs: a package of
#: the same name would shadow them.
SHADOWED_NAMES = frozenset(
    {
        "test", "tests", "torch", "fastapi", "starlette", "pydantic", "pydantic_settings",
        "uvicorn", "sqlalchemy", "pymysql", "prometheus_client", "numpy", "httpx",
        "anyio", "pytest", "typing_extensions", "cryptography", "scripts", "src", "app",
        "site", "setuptools", "pip", "json", "logging", "typing", "asyncio", "os", "sys",
        "types", "collections", "email", "http", "queue", "string", "random", "time",
    }
)

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
PACKAGE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
DB_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_NAME_LEN = 64
MAX_TEXT_LEN = 500


class RuleError(ValueError):
    """An answer breaks a rule; ``str()`` is one line meant for the user."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


def load_compat() -> dict[str, dict[str, Any]]:
    """Return the torch compatibility table (torch version -> facts)."""
    data = json.loads((TEMPLATE_DIR / "torch_compat.json").read_text(encoding="utf-8"))
    versions: dict[str, dict[str, Any]] = data["versions"]
    return versions


# ---------------------------------------------------------------------------------
# Derived values (used as defaults in cookiecutter.json through the Jinja extension)


def derive_slug(name: str) -> str:
    """Lower-case ASCII slug of a project name; '' when nothing usable is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_name.lower())
    slug = "-".join(words)[:MAX_NAME_LEN].strip("-")
    return slug


def derive_package(slug: str) -> str:
    """Python package name for a slug."""
    return slug.replace("-", "_")


# ---------------------------------------------------------------------------------
# Checks: each takes the raw value and returns the normalised string, or raises.


def _text(key: str, value: Any, *, multiline: bool, max_len: int = MAX_TEXT_LEN) -> str:
    if not isinstance(value, str):
        raise RuleError(key, f"must be text, got {type(value).__name__}")
    if len(value) > max_len:
        raise RuleError(key, f"must be at most {max_len} characters")
    for ch in value:
        if ch == "\n" and multiline:
            continue
        if ch == "\t":
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn") or ch in "\u2028\u2029\ufeff":
            raise RuleError(key, f"must not contain the control character U+{ord(ch):04X}")
    return value


def check_project_name(value: Any) -> str:
    """A human name: not blank, no path parts, starts with a letter."""
    text = _text("project_name", value, multiline=False, max_len=MAX_NAME_LEN)
    if not text.strip():
        raise RuleError("project_name", "must not be empty or spaces only")
    if "/" in text or "\\" in text or ".." in text:
        raise RuleError("project_name", "must not contain '/', '\\' or '..'")
    if not text.strip()[0].isalpha():
        raise RuleError("project_name", "must start with a letter")
    if text != text.strip():
        raise RuleError("project_name", "must not start or end with spaces")
    return text


def check_slug(value: Any) -> str:
    """Directory and distribution name: lower-case letters, digits, single dashes."""
    text = _text("project_slug", value, multiline=False, max_len=MAX_NAME_LEN)
    if not text:
        raise RuleError(
            "project_slug",
            "is empty (the project name has no ASCII letters or digits: set project_slug)",
        )
    if not SLUG_RE.match(text):
        raise RuleError(
            "project_slug",
            f"{text!r} must start with a letter and hold only a-z, 0-9 and single '-'",
        )
    return text


def check_package(value: Any) -> str:
    """Importable, not a keyword, not the name of a dependency."""
    text = _text("package_name", value, multiline=False, max_len=MAX_NAME_LEN)
    if not PACKAGE_RE.match(text):
        raise RuleError(
            "package_name", f"{text!r} must start with a letter and hold only a-z, 0-9 and '_'"
        )
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        raise RuleError("package_name", f"{text!r} is a Python keyword")
    if text in SHADOWED_NAMES:
        raise RuleError("package_name", f"{text!r} would shadow a module the service imports")
    return text


def check_db_name(value: Any) -> str:
    """MySQL identifier kept to a portable subset."""
    text = _text("db_name", value, multiline=False, max_len=64)
    if not DB_NAME_RE.match(text):
        raise RuleError("db_name", f"{text!r} must start with a letter and hold only A-Z, a-z, 0-9, '_'")
    return text


def _int(key: str, value: Any, low: int, high: int) -> str:
    if isinstance(value, bool):
        raise RuleError(key, f"must be a whole number, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        number = int(value.strip())
    else:
        raise RuleError(key, f"must be a whole number, got {value!r}")
    if not low <= number <= high:
        raise RuleError(key, f"must be between {low} and {high}, got {number}")
    return str(number)


def check_port(value: Any) -> str:
    """An unprivileged TCP port."""
    return _int("api_port", value, 1024, 65535)


def check_bool(key: str, value: Any) -> bool:
    """A yes/no answer; accepts booleans and the usual words."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "y", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "n", "off"):
        return False
    raise RuleError(key, f"must be yes or no, got {value!r}")


@dataclass(frozen=True)
class Rule:
    """What servegen knows about one option beyond its name, default and choices."""

    kind: str  # "text", "int", "bool", "choice"
    help: str


RULES: dict[str, Rule] = {
    "project_name": Rule("text", "Human-readable name; the slug and package are derived from it."),
    "project_slug": Rule("text", "Directory, distribution and image name (a-z, 0-9, '-')."),
    "package_name": Rule("text", "Import name of the service package (a-z, 0-9, '_')."),
    "description": Rule("text", "One line (or a few) describing the service; any text."),
    "author": Rule("text", "Author or owning team; any text."),
    "python_version": Rule("choice", "Python of the image and the project's venv."),
    "torch_version": Rule("choice", "PyTorch release; must support the chosen Python."),
    "accelerator": Rule("choice", "cpu builds from the CPU wheel index; cuda reserves a GPU."),
    "model_format": Rule("choice", "Serialisation of the served model."),
    "api_port": Rule("int", "Port the service listens on inside the container (1024-65535)."),
    "db_name": Rule("text", "MySQL database that receives the prediction log."),
    "batching": Rule("bool", "Gather concurrent requests into one forward pass."),
    "batch_max_size": Rule("int", "Most items run in one forward pass (1-4096)."),
    "batch_max_wait_ms": Rule("int", "Longest a request waits for a batch to fill (0-1000 ms)."),
}

ORDER = tuple(RULES)


def validate(answers: dict[str, Any], choices: dict[str, list[str]]) -> dict[str, Any]:
    """Check every answer; return them normalised (strings, booleans) in a new dict.

    ``choices`` maps each choice option to its allowed values (from cookiecutter.json).
    Raises RuleError for the first answer that breaks a rule.
    """
    unknown = sorted(k for k in answers if not k.startswith("_") and k not in RULES)
    if unknown:
        raise RuleError(unknown[0], "is not an option of this template")
    missing = [k for k in ORDER if k not in answers]
    if missing:
        raise RuleError(missing[0], "has no value")
    out: dict[str, Any] = {}
    out["project_name"] = check_project_name(answers["project_name"])
    out["project_slug"] = check_slug(answers["project_slug"])
    out["package_name"] = check_package(answers["package_name"])
    out["description"] = _text("description", answers["description"], multiline=True)
    out["author"] = _text("author", answers["author"], multiline=False, max_len=200)
    for key in ("python_version", "torch_version", "accelerator", "model_format"):
        value = answers[key]
        if not isinstance(value, str) or value not in choices[key]:
            allowed = ", ".join(choices[key])
            raise RuleError(key, f"{value!r} is not one of: {allowed}")
        out[key] = value
    out["api_port"] = check_port(answers["api_port"])
    out["db_name"] = check_db_name(answers["db_name"])
    out["batching"] = check_bool("batching", answers["batching"])
    out["batch_max_size"] = _int("batch_max_size", answers["batch_max_size"], 1, 4096)
    out["batch_max_wait_ms"] = _int("batch_max_wait_ms", answers["batch_max_wait_ms"], 0, 1000)

    compat = load_compat()
    torch = compat.get(out["torch_version"])
    if torch is None:
        raise RuleError("torch_version", f"{out['torch_version']!r} is not in torch_compat.json")
    if out["python_version"] not in torch["python"]:
        supported = ", ".join(torch["python"])
        raise RuleError(
            "python_version",
            f"torch {out['torch_version']} has no wheels for Python {out['python_version']}"
            f" (supported: {supported})",
        )
    return out
