"""The one options object: answers from defaults, a file, ``--set`` and prompts.

Names, defaults, choices and questions come from the template's ``cookiecutter.json``;
rules, help and derivations from its ``servegen_rules`` module (see
:mod:`generator.template`). Nothing here repeats a rule. Answers are checked as they
arrive, so an error names where the bad value came from, and once more all together
(rules between answers) before an immutable :class:`Options` is built.

Derived options (slug, package, database name) follow the answers they are computed
from until they are set explicitly. The derivation is the Jinja expression written in
``cookiecutter.json``, evaluated with the answers passed as data: an answer is never
itself parsed as a template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from generator.errors import OptionError, UsageError
from generator.template import Template, on_sys_path


@dataclass(frozen=True)
class Question:
    """One prompt: the option, its question, kind, current default, choices and help.

    ``choices`` holds only the values the earlier answers allow (a torch release is
    offered only for a Python it has wheels for); ``default`` is one of them.
    """

    key: str
    text: str
    kind: str
    default: str
    choices: tuple[str, ...]
    help: str = ""


@dataclass(frozen=True)
class Options:
    """Validated answers for one template; immutable, read by every later step."""

    template: Template
    values: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        """Return one normalised answer (text, or a bool for yes/no options)."""
        return self.values[key]

    @property
    def slug(self) -> str:
        """Return the project slug (the default directory name)."""
        return str(self.values["project_slug"])

    def context_values(self) -> dict[str, Any]:
        """Return the answers as cookiecutter holds them: text, and bools for yes/no."""
        return {key: self.values[key] for key in self.template.keys}


def _rule_error(exc: Exception, source: str | None) -> OptionError:
    """Turn a rules-module error into an OptionError that says where the value came from."""
    key = str(getattr(exc, "key", "?"))
    reason = str(getattr(exc, "reason", exc))
    suffix = f" (from {source})" if source and source != "prompt" else ""
    return OptionError(key, reason + suffix)


class OptionsBuilder:
    """Collects answers from their sources, checking each one as it arrives."""

    def __init__(self, template: Template) -> None:
        """Start with no explicit answers: every option takes its default."""
        self.template = template
        self._given: dict[str, Any] = {}
        self._source: dict[str, str] = {}
        #: ``_template_version`` of an applied answers file (None when it had none).
        self.recorded_version: str | None = None
        #: Derived defaults, compiled once each: a prompt session evaluates them often.
        self._compiled: dict[str, Any] = {}

    # -- sources ---------------------------------------------------------------------

    def set(self, key: str, value: Any, source: str) -> None:
        """Set one answer explicitly; raises OptionError naming ``source`` when it is bad."""
        if key not in self.template.keys:
            raise OptionError(key, f"unknown option (from {source}; `servegen options` lists them)")
        if isinstance(value, str) and self.template.rule(key).kind in ("int", "bool", "choice"):
            # Typed answers given as text tolerate surrounding spaces; free text is kept
            # exactly as written.
            value = value.strip()
        try:
            normalised = self.template.rules.check_answer(key, value)
        except self.template.rules.RuleError as exc:
            raise _rule_error(exc, source) from exc
        self._given[key] = normalised
        self._source[key] = source

    def apply_sets(self, items: list[str]) -> None:
        """Apply ``--set KEY=VALUE`` items in order (a later one wins)."""
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
            self.set(key.strip(), value, "--set")

    def apply_answers_file(self, path: Path) -> None:
        """Apply every answer of a YAML or JSON answers file (a recorded one works)."""
        data = load_answers_file(path)
        recorded_template = data.get("_template")
        if recorded_template is not None and recorded_template != self.template.name:
            raise UsageError(
                f"{path}: written for template {recorded_template!r}, not {self.template.name!r}"
            )
        if data.get("_template_version") is not None:
            self.recorded_version = str(data["_template_version"])
        for key, value in data.items():
            if isinstance(key, str) and key.startswith("_"):
                continue  # metadata: template name and version, cookiecutter's own keys
            self.set(str(key), value, str(path))

    def check_given(self) -> None:
        """Check the explicit answers together (rules between answers); OptionError if bad.

        Run before asking anything, so that two clashing ``--set`` values are refused
        before a question is asked rather than after the last one.
        """
        try:
            self.template.rules.validate_partial(dict(self._given))
        except self.template.rules.RuleError as exc:
            raise _rule_error(exc, self._source.get(exc.key)) from exc

    def answer(self, key: str, text: str) -> None:
        """Record a typed prompt answer; raises OptionError (and keeps nothing) when bad.

        An empty answer takes the shown default. A choice may be given by its number in
        the list shown or by its value in any letter case (``CPU`` is ``cpu``). The
        answer must also agree with the earlier and the explicit answers. Accepting a
        derived default keeps the option derived.
        """
        question = self.question(key)
        text = pick_choice(question, text)
        had, before = key in self._given, self._given.get(key)
        self.set(key, text, "prompt")
        try:
            self.template.rules.validate_partial(
                {**self.known(key), key: self._given[key]}, blame=key
            )
        except self.template.rules.RuleError as exc:
            if had:
                self._given[key] = before
            else:
                del self._given[key]
            raise OptionError(exc.key, exc.reason) from exc
        derived = self.template.rule(key).derived
        if not had and derived and self._given[key] == self.default(key):
            del self._given[key]

    def is_given(self, key: str) -> bool:
        """Return whether ``key`` has an explicit answer (file, ``--set`` or prompt)."""
        return key in self._given

    # -- reading ---------------------------------------------------------------------

    def value(self, key: str) -> Any:
        """Return the current value: the explicit answer, else the (derived) default."""
        if key in self._given:
            return self._given[key]
        return self.default(key)

    def default(self, key: str) -> Any:
        """Return the default, evaluating a derived default against the current answers."""
        raw = self.template.raw_default(key)
        if not isinstance(raw, str) or "{" not in raw:
            return raw
        earlier = {k: self.value(k) for k in self.template.derived_from(key)}
        compiled = self._compiled.get(raw)
        if compiled is None:
            compiled = self._compiled[raw] = compile_default(self.template, raw)
        return str(compiled.render(cookiecutter=earlier))

    def known(self, key: str) -> dict[str, Any]:
        """Return what is known when ``key`` is asked: earlier values, explicit answers.

        Earlier options count with their current value (default or answer); later ones
        only when answered explicitly (``--set torch_version=2.5.1`` narrows the Pythons
        offered). ``key`` itself is left out.
        """
        earlier = self.template.keys[: self.template.keys.index(key)]
        known = {k: self.value(k) for k in earlier}
        known.update(self._given)
        known.pop(key, None)
        return known

    def allowed_choices(self, key: str) -> tuple[str, ...]:
        """Return the choices the known answers allow for ``key`` (() for a free option)."""
        if self.template.rule(key).kind != "choice":
            return ()
        return tuple(self.template.rules.allowed_choices(key, self.known(key)))

    def excluded_choices(self, key: str) -> list[tuple[str, str]]:
        """Return each choice the known answers rule out, with the rule's reason."""
        rules = self.template.rules
        known = self.known(key)
        out = []
        for choice in self.template.rule(key).choices:
            try:
                rules.check_combination({**known, key: choice}, blame=key)
            except rules.RuleError as exc:
                out.append((choice, str(exc.reason)))
        return out

    def is_relevant(self, key: str) -> bool:
        """Return whether ``key``'s answer can matter, given the earlier answers."""
        return bool(self.template.rules.is_relevant(key, self.known(key)))

    def needs_asking(self, key: str) -> bool:
        """Return whether a prompt should ask ``key`` now.

        Not when it is answered already, when its answer cannot matter (the rule's
        ``asked_when``), or when the earlier answers leave a single choice.
        """
        if key in self._given or not self.is_relevant(key):
            return False
        return self.template.rule(key).kind != "choice" or len(self.allowed_choices(key)) != 1

    def question(self, key: str) -> Question:
        """Return the prompt for one option, with its current default and allowed choices."""
        rule = self.template.rule(key)
        choices = self.allowed_choices(key)
        default = self.value(key)
        if choices and default not in choices:
            default = choices[0]
        shown = ("yes" if default else "no") if isinstance(default, bool) else str(default)
        return Question(
            key=key,
            text=self.template.prompt(key),
            kind=rule.kind,
            default=shown,
            choices=choices,
            help=str(rule.help),
        )

    def build(self) -> Options:
        """Check all answers together and return the immutable options."""
        values = {key: self.value(key) for key in self.template.keys}
        try:
            normalised = self.template.rules.validate(values)
        except self.template.rules.RuleError as exc:
            source = self._source.get(exc.key)
            raise _rule_error(exc, source) from exc
        return Options(template=self.template, values=MappingProxyType(normalised))


def pick_choice(question: Question, text: str) -> str:
    """Turn a typed answer into the value it picks.

    Empty text is the default; for a choice, a number picks from the list shown and a
    value matches in any letter case. Anything else is returned as typed, for the rule
    to refuse with its reason.
    """
    if text.strip() == "":
        return question.default
    if not question.choices:
        return text
    typed = text.strip()
    if typed in question.choices:
        return typed
    if typed.isascii() and typed.isdigit():
        index = int(typed)
        if 1 <= index <= len(question.choices):
            return question.choices[index - 1]
        raise OptionError(
            question.key, f"{typed} is not a number in the list (1-{len(question.choices)})"
        )
    folded = [choice for choice in question.choices if choice.casefold() == typed.casefold()]
    return folded[0] if len(folded) == 1 else typed


def compile_default(template: Template, expression: str) -> Any:
    """Compile a default written in cookiecutter.json; render it with the answers as data.

    The environment is cookiecutter's own (same filters, strict undefined), so the
    value equals what plain ``cookiecutter`` would propose.
    """
    from cookiecutter.environment import StrictEnvironment

    with on_sys_path(template.path):
        env = StrictEnvironment(context={"cookiecutter": dict(template.spec)})
        return env.from_string(expression)


def render_default(template: Template, expression: str, answers: Mapping[str, Any]) -> str:
    """Evaluate a default written in cookiecutter.json with the answers as data."""
    return str(compile_default(template, expression).render(cookiecutter=dict(answers)))


def load_answers_file(path: Path) -> dict[str, Any]:
    """Read an answers file: JSON when named ``*.json``, YAML otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read answers file {path}: {reason}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "parse error"
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}: not valid YAML ({problem}{where})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of option: value, got {type(data).__name__}")
    return data


def build_options(
    template: Template,
    *,
    answers_file: Path | None = None,
    sets: list[str] | None = None,
) -> OptionsBuilder:
    """Return a builder with the file answers and then the ``--set`` items applied."""
    builder = OptionsBuilder(template)
    if answers_file is not None:
        builder.apply_answers_file(answers_file)
    builder.apply_sets(sets or [])
    builder.check_given()
    return builder
