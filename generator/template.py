"""Find the cookiecutter template and load what it declares.

The template folder is the single source of every fact about the options:
``cookiecutter.json`` holds names, defaults, choices and prompts, and the template's
``servegen_rules`` module holds rules, help text and derivations. This module loads
both from the folder itself (never a copy), from a checkout (``templates/`` beside
the package) or from an installed wheel (``generator/templates/``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from generator.errors import RenderError, UsageError

#: The template that ``servegen new`` renders.
DEFAULT_TEMPLATE = "torch-fastapi"

#: Overrides the template folder (for template development and tests).
TEMPLATE_ENV = "SERVEGEN_TEMPLATE_DIR"

_PACKAGE_DIR = Path(__file__).resolve().parent
_REFERENCE = re.compile(r"cookiecutter\.([A-Za-z_][A-Za-z0-9_]*)")


def template_search_path(name: str = DEFAULT_TEMPLATE) -> list[Path]:
    """Return the folders where the template may live, in the order they are tried."""
    return [
        _PACKAGE_DIR / "templates" / name,  # installed from a wheel
        _PACKAGE_DIR.parent / "templates" / name,  # a checkout of the repository
    ]


def find_template(name: str = DEFAULT_TEMPLATE) -> Path:
    """Return the template folder, honouring ``SERVEGEN_TEMPLATE_DIR``."""
    override = os.environ.get(TEMPLATE_ENV)
    candidates = [Path(override)] if override else template_search_path(name)
    for candidate in candidates:
        if (candidate / "cookiecutter.json").is_file():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise RenderError(f"template {name!r} not found (looked in {tried})")


def _load_module(name: str, path: Path) -> ModuleType:
    """Import ``path`` as module ``name``, reusing it when that file is loaded already.

    The module goes into ``sys.modules`` under its plain name because the template's
    Jinja extension imports it that way while cookiecutter renders.
    """
    loaded = sys.modules.get(name)
    loaded_file = getattr(loaded, "__file__", None)
    if loaded is not None and loaded_file and Path(loaded_file).resolve() == path.resolve():
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RenderError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise RenderError(f"cannot load {path}: {exc}") from exc
    return module


@contextmanager
def on_sys_path(folder: Path) -> Iterator[None]:
    """Put the template folder first on ``sys.path`` (for its ``_extensions``)."""
    saved = list(sys.path)
    sys.path.insert(0, str(folder))
    # A template module cached from another folder would shadow this one.
    for name in ("servegen_ext", "servegen_rules"):
        module = sys.modules.get(name)
        module_file = getattr(module, "__file__", None)
        if module_file and Path(module_file).resolve().parent != folder.resolve():
            del sys.modules[name]
    try:
        yield
    finally:
        sys.path[:] = saved


@dataclass(frozen=True)
class Template:
    """A loaded template: its folder, its cookiecutter.json and its rules module."""

    name: str
    path: Path
    spec: Mapping[str, Any] = field(repr=False)
    rules: ModuleType = field(repr=False)

    @property
    def version(self) -> str:
        """Return the template version recorded in generated projects."""
        return str(self.spec.get("_template_version", "0"))

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """Return the option names, in the order of cookiecutter.json."""
        return tuple(k for k in self.spec if not k.startswith("_"))

    def prompt(self, key: str) -> str:
        """Return the question text for an option."""
        prompts = self.spec.get("__prompts__", {})
        return str(prompts.get(key, key.replace("_", " ").capitalize()))

    def rule(self, key: str) -> Any:
        """Return the rules module's ``Rule`` (kind, help, derived) for an option."""
        return self.rules.RULES[key]

    def raw_default(self, key: str) -> Any:
        """Return the default as written in cookiecutter.json (a choice list's first)."""
        raw = self.spec[key]
        return raw[0] if isinstance(raw, list) else raw

    def derived_from(self, key: str) -> list[str]:
        """Return the options that a derived default refers to (empty when not derived)."""
        raw = self.spec[key]
        if not isinstance(raw, str):
            return []
        return [name for name in _REFERENCE.findall(raw) if name in self.keys]


def load_template(path: Path | None = None, name: str = DEFAULT_TEMPLATE) -> Template:
    """Load a template folder (found with :func:`find_template` when not given)."""
    folder = (path or find_template(name)).resolve()
    spec_file = folder / "cookiecutter.json"
    try:
        spec = json.loads(spec_file.read_text(encoding="utf-8"), object_pairs_hook=OrderedDict)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read template {spec_file}: {exc}") from exc
    rules = _load_module("servegen_rules", folder / "servegen_rules.py")
    template = Template(name=folder.name, path=folder, spec=spec, rules=rules)
    # cookiecutter.json and the rules must name the same options in the same order:
    # the recorded answers and the prompts follow that order.
    if template.keys != tuple(rules.ORDER):
        raise RenderError(
            f"template {folder}: cookiecutter.json options {list(template.keys)} differ"
            f" from servegen_rules.RULES {list(rules.ORDER)}"
        )
    # A list in cookiecutter.json is a choice prompt there; the rules must check it as one.
    listed = [key for key in template.keys if isinstance(spec[key], list)]
    choice_rules = [key for key in template.keys if template.rule(key).kind == "choice"]
    if listed != choice_rules:
        raise RenderError(
            f"template {folder}: cookiecutter.json lists choices for {listed}, but"
            f" servegen_rules.RULES has choice rules for {choice_rules}"
        )
    # A question is skipped by the answers asked before it, never by later ones.
    for index, key in enumerate(template.keys):
        later = [
            name for name, _ in template.rule(key).asked_when if name not in template.keys[:index]
        ]
        if later:
            raise RenderError(
                f"template {folder}: servegen_rules.RULES[{key!r}].asked_when names {later},"
                " which are not options asked before it"
            )
    return template
