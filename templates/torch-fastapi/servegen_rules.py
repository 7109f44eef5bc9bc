"""Validation rules and derived values for the torch-fastapi template.

This module is the single home of every rule about the template's answers. It is
imported by the template's ``pre_gen_project`` hook (plain ``cookiecutter`` path), by
its Jinja extension (derived defaults), and by servegen's ``generator.options``; all
three call the same functions, so the two ways of rendering the template cannot
disagree. It uses the standard library only: plain ``cookiecutter`` must work with
nothing but cookiecutter installed.

Names, defaults and choices live in ``cookiecutter.json`` (read here once, for the
choices); :data:`RULES` is one table of everything else per option: kind, help text,
check, derivation. The torch/Python compatibility table is data in ``torch_compat.json``.
"""

from __future__ import annotations

import functools
import json
import keyword
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parent

#: Packages the generated service imports or that its tooling installs: a package of
#: the same name would shadow them.
SHADOWED_NAMES = frozenset(
    {
        "test",
        "tests",
        "torch",
        "fastapi",
        "starlette",
        "pydantic",
        "pydantic_settings",
        "uvicorn",
        "sqlalchemy",
        "pymysql",
        "prometheus_client",
        "numpy",
        "httpx",
        "anyio",
        "pytest",
        "typing_extensions",
        "cryptography",
        "scripts",
        "src",
        "app",
        "site",
        "setuptools",
        "pip",
        "json",
        "logging",
        "typing",
        "asyncio",
        "os",
        "sys",
        "types",
        "collections",
        "email",
        "http",
        "queue",
        "string",
        "random",
        "time",
    }
)

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
PACKAGE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
DB_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Schemas MySQL keeps for itself. The app user is granted ALL on its database, so with
#: ``mysql`` it could rewrite MySQL's own grant tables. Compared case-insensitively:
#: ``information_schema`` and ``performance_schema`` are, and a case-insensitive file
#: system (lower_case_table_names) would make ``MySQL`` the same schema as ``mysql``.
#: Ref: https://dev.mysql.com/doc/refman/8.4/en/system-schema.html
SYSTEM_SCHEMAS = frozenset({"mysql", "sys", "information_schema", "performance_schema"})
MAX_NAME_LEN = 64
MAX_TEXT_LEN = 500


class RuleError(ValueError):
    """An answer breaks a rule; ``str()`` is one line meant for the user."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


@functools.cache
def template_spec() -> dict[str, Any]:
    """Return this template's ``cookiecutter.json``, read once: the home of the choices."""
    spec: dict[str, Any] = json.loads(
        (TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8")
    )
    return spec


@functools.cache
def load_compat() -> dict[str, dict[str, Any]]:
    """Return the torch compatibility table (torch version -> facts), read once.

    The table is shared by every caller: read it, never change it.
    """
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


#: Model format -> the model file's name in the container (``/models/<name>``).
MODEL_FILES = {"state_dict": "model.safetensors", "torchscript": "model.pt", "export": "model.pt2"}


def model_file(model_format: str) -> str:
    """Return the model file's name for a model format."""
    return MODEL_FILES[model_format]


# ---------------------------------------------------------------------------------
# Checks: each takes the option's name and the raw value, and returns the normalised
# value (text, or a bool for yes/no options), or raises RuleError.


def _text(key: str, value: Any, *, multiline: bool, max_len: int = MAX_TEXT_LEN) -> str:
    if not isinstance(value, str):
        raise RuleError(key, f"must be text, got {type(value).__name__}")
    if len(value) > max_len:
        raise RuleError(key, f"must be at most {max_len} characters")
    for ch in value:
        if ch == "\n":
            if multiline:
                continue
            raise RuleError(key, "must be a single line")
        if ch == "\t":
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn") or ch in "\u2028\u2029\ufeff":
            raise RuleError(key, f"must not contain the control character U+{ord(ch):04X}")
    return value


def check_project_name(key: str, value: Any) -> str:
    """Check a human name: not blank, no path parts, starts with a letter."""
    text = _text(key, value, multiline=False, max_len=MAX_NAME_LEN)
    if not text.strip():
        raise RuleError(key, "must not be empty or spaces only")
    if "/" in text or "\\" in text or ".." in text:
        raise RuleError(key, "must not contain '/', '\\' or '..'")
    if not text.strip()[0].isalpha():
        raise RuleError(key, "must start with a letter")
    if text != text.strip():
        raise RuleError(key, "must not start or end with spaces")
    return text


def check_slug(key: str, value: Any) -> str:
    """Check a slug (directory and distribution name): a-z, 0-9 and single dashes."""
    text = _text(key, value, multiline=False, max_len=MAX_NAME_LEN)
    if not text:
        raise RuleError(
            key, "is empty (the project name has no ASCII letters or digits: set project_slug)"
        )
    if not SLUG_RE.match(text):
        raise RuleError(
            key, f"{text!r} must start with a letter and hold only a-z, 0-9 and single '-'"
        )
    return text


def check_package(key: str, value: Any) -> str:
    """Check a package name: importable, not a keyword, not a dependency's name."""
    text = _text(key, value, multiline=False, max_len=MAX_NAME_LEN)
    if not PACKAGE_RE.match(text):
        raise RuleError(key, f"{text!r} must start with a letter and hold only a-z, 0-9 and '_'")
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        raise RuleError(key, f"{text!r} is a Python keyword")
    if text in SHADOWED_NAMES:
        raise RuleError(key, f"{text!r} would shadow a module the service imports")
    return text


def check_db_name(key: str, value: Any) -> str:
    """Check a MySQL identifier, kept to a portable subset."""
    text = _text(key, value, multiline=False, max_len=64)
    if not DB_NAME_RE.match(text):
        raise RuleError(key, f"{text!r} must start with a letter and hold only A-Z, a-z, 0-9, '_'")
    if text.lower() in SYSTEM_SCHEMAS:
        raise RuleError(
            key,
            f"{text!r} is a MySQL system schema; the service's user would be granted"
            " MySQL's own tables (choose a name of your own)",
        )
    return text


#: Text that reads as a whole number, sign and leading zeros included ("-1", "+7", "08").
INTEGER_TEXT_RE = re.compile(r"[+-]?[0-9]+")


def _int(key: str, value: Any, low: int, high: int) -> str:
    # Only the canonical spelling is accepted ("8000", not "08000", "+8000" or " 8000"):
    # the template receives the answer as text on the plain cookiecutter path, so a
    # second spelling of the same number would render a different file. Text that reads
    # as a number out of range (say "-1") is told the range, not "a whole number".
    if isinstance(value, bool):
        raise RuleError(key, f"must be a whole number, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and INTEGER_TEXT_RE.fullmatch(value):
        digits = value.lstrip("+-").lstrip("0") or "0"
        if len(digits) > len(str(high)):  # too long to be in range (and to convert cheaply)
            shown = value if len(value) <= 20 else value[:20] + "..."
            raise RuleError(key, f"must be between {low} and {high}, got {shown}")
        number = int(value)
        if low <= number <= high and value != str(number):
            raise RuleError(
                key, f"must be a whole number written plainly ({number}), got {value!r}"
            )
    else:
        raise RuleError(key, f"must be a whole number, got {value!r}")
    if not low <= number <= high:
        raise RuleError(key, f"must be between {low} and {high}, got {number}")
    return str(number)


TRUE_WORDS = ("true", "yes", "y", "on", "1")
FALSE_WORDS = ("false", "no", "n", "off", "0")


def check_bool(key: str, value: Any) -> bool:
    """Read a yes/no answer; accepts booleans and the usual words."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS:
        return True
    if isinstance(value, str) and value.strip().lower() in FALSE_WORDS:
        return False
    raise RuleError(key, f"must be yes or no, got {value!r}")


def choices_of(key: str) -> list[str]:
    """Return the values ``cookiecutter.json`` lists for an option ([] for a free one)."""
    listed = template_spec().get(key)
    return [str(choice) for choice in listed] if isinstance(listed, list) else []


def check_choice(key: str, value: Any) -> str:
    """Check that a choice answer is one of the values listed in cookiecutter.json."""
    if isinstance(value, bool) or not isinstance(value, str):
        # A YAML answers file turns an unquoted 3.10 into the number 3.1: say so
        # instead of comparing a number with the text choices.
        raise RuleError(key, f"must be text (quote it), got the {type(value).__name__} {value!r}")
    allowed = choices_of(key)
    if value not in allowed:
        raise RuleError(key, f"{value!r} is not one of: {', '.join(allowed)}")
    return value


# ---------------------------------------------------------------------------------
# The table: one rule per option, in the order of cookiecutter.json.


@dataclass(frozen=True)
class Rule:
    """What servegen knows about one option beyond its name and default."""

    key: str
    kind: str  # "text", "int", "bool", "choice"
    help: str
    #: ``check(key, value)``: the normalised value, or RuleError
    check: Callable[[str, Any], Any]
    derived: bool = False  # its default is computed from earlier answers
    #: Asked only when each ``(option, value)`` pair holds for the earlier answers
    #: (normalised values: ``True`` for yes); otherwise the answer cannot matter and
    #: the option keeps its default, which is still recorded and rendered.
    asked_when: tuple[tuple[str, Any], ...] = ()

    @property
    def choices(self) -> list[str]:
        """Return the allowed values of a choice option ([] for the others)."""
        return choices_of(self.key) if self.kind == "choice" else []

    def normalise(self, value: Any) -> Any:
        """Check one answer on its own; return it normalised, or raise RuleError."""
        return self.check(self.key, value)


def _rule_table(*rules: Rule) -> dict[str, Rule]:
    return {rule.key: rule for rule in rules}


RULES: dict[str, Rule] = _rule_table(
    Rule(
        "project_name",
        "text",
        "Human-readable name; the slug and package are derived from it.",
        check_project_name,
    ),
    Rule(
        "project_slug",
        "text",
        "Directory, distribution and image name (a-z, 0-9, '-').",
        check_slug,
        derived=True,
    ),
    Rule(
        "package_name",
        "text",
        "Import name of the service package (a-z, 0-9, '_').",
        check_package,
        derived=True,
    ),
    Rule(
        "description",
        "text",
        "One line (or a few) describing the service; any text.",
        partial(_text, multiline=True),
    ),
    Rule(
        "author",
        "text",
        "Author or owning team; any text.",
        partial(_text, multiline=False, max_len=200),
    ),
    Rule("python_version", "choice", "Python of the image and the project's venv.", check_choice),
    Rule(
        "torch_version",
        "choice",
        "PyTorch release; must support the chosen Python.",
        check_choice,
    ),
    Rule(
        "accelerator",
        "choice",
        "cpu builds from the CPU wheel index; cuda reserves a GPU.",
        check_choice,
    ),
    Rule(
        "task",
        "choice",
        "tensor: numeric items in and out; image-classification: a JPEG or PNG in, the"
        " top labels with scores out.",
        check_choice,
    ),
    Rule(
        "model_format",
        "choice",
        "state_dict: weights in a safetensors file, the network's code in the project;"
        " torchscript: a TorchScript archive; export: a torch.export program (.pt2).",
        check_choice,
    ),
    Rule(
        "api_port",
        "int",
        "Port the service listens on inside the container (1024-65535).",
        partial(_int, low=1024, high=65535),
    ),
    Rule(
        "db_name",
        "text",
        "MySQL database that receives the prediction log (not one of MySQL's own schemas).",
        check_db_name,
        derived=True,
    ),
    Rule("batching", "bool", "Gather concurrent requests into one forward pass.", check_bool),
    Rule(
        "batch_max_size",
        "int",
        "Most items run in one forward pass (1-4096).",
        partial(_int, low=1, high=4096),
        asked_when=(("batching", True),),
    ),
    Rule(
        "batch_max_wait_ms",
        "int",
        "Longest a request waits for a batch to fill (0-1000 ms).",
        partial(_int, low=0, high=1000),
        asked_when=(("batching", True),),
    ),
    Rule(
        "kubernetes",
        "bool",
        "Also render deploy/k8s/ (a kustomize base, development and production overlays)"
        " and docs/kubernetes.md. Off by default: servegen test runs the rest of the"
        " project for real, but can only validate and build these, not run them on a"
        " cluster.",
        check_bool,
    ),
)

ORDER = tuple(RULES)


def check_answer(key: str, value: Any) -> Any:
    """Check one answer on its own; return it normalised (text, or a bool)."""
    if key not in RULES:
        raise RuleError(key, "is not an option of this template")
    return RULES[key].normalise(value)


def check_combination(answers: dict[str, Any], blame: str = "python_version") -> None:
    """Rules between answers; applied to the keys present, ``blame`` names the culprit."""
    if "torch_version" not in answers or "python_version" not in answers:
        return
    torch = load_compat().get(answers["torch_version"])
    if torch is None:
        raise RuleError(
            "torch_version", f"{answers['torch_version']!r} is not in torch_compat.json"
        )
    if answers["python_version"] not in torch["python"]:
        supported = ", ".join(torch["python"])
        raise RuleError(
            blame,
            f"torch {answers['torch_version']} has no wheels for Python"
            f" {answers['python_version']} (supported: {supported})",
        )


def is_relevant(key: str, answers: dict[str, Any]) -> bool:
    """Return whether the answer to ``key`` can matter, given the (normalised) answers.

    Only the rule's ``asked_when`` conditions decide; a prompt also skips a choice that
    :func:`allowed_choices` narrows to a single value.
    """
    return all(answers.get(name) == wanted for name, wanted in RULES[key].asked_when)


def allowed_choices(key: str, answers: dict[str, Any]) -> list[str]:
    """Return the choices of ``key`` that :func:`check_combination` accepts with ``answers``.

    ``answers`` holds the (normalised) answers known so far; ``key``'s own entry is
    ignored. The torch releases offered for a chosen Python are those with its wheels.
    """
    others = {name: value for name, value in answers.items() if name != key}
    allowed = []
    for choice in RULES[key].choices:
        try:
            check_combination({**others, key: choice}, blame=key)
        except RuleError:
            continue
        allowed.append(choice)
    return allowed


def validate_partial(answers: dict[str, Any], blame: str = "python_version") -> dict[str, Any]:
    """Check the answers given so far (used while prompting); return them normalised."""
    out = {key: check_answer(key, answers[key]) for key in ORDER if key in answers}
    check_combination(out, blame)
    return out


def validate(answers: dict[str, Any]) -> dict[str, Any]:
    """Check every answer; return them normalised (strings, booleans) in a new dict.

    Keys starting with ``_`` are cookiecutter's own and are ignored. Raises RuleError
    for the first answer that breaks a rule.
    """
    unknown = sorted(k for k in answers if not k.startswith("_") and k not in RULES)
    if unknown:
        raise RuleError(unknown[0], "is not an option of this template")
    missing = [k for k in ORDER if k not in answers]
    if missing:
        raise RuleError(missing[0], "has no value")
    return validate_partial(answers)
