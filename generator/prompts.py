"""The questions of ``servegen new``: ask, re-ask, summarise, confirm.

The session reads lines with :func:`input`. On a terminal, :mod:`readline` is imported
first, so :func:`input` edits the line (arrows, Home/End, Ctrl-W, history) instead of
putting an escape sequence into the answer. Colour is used on a terminal only, and
never when ``NO_COLOR`` is set to a non-empty value (Ref: https://no-color.org).

Each question shows its progress (``[n/N]``), the choices the earlier answers allow
(numbered; picked by number or by value in any letter case), and its default; ``?``
shows the option's help. A question whose answer cannot matter is not asked (the
rule's ``asked_when``, or a single allowed choice) and keeps its value. A bad answer is
refused with the rule's reason and asked again. After the last question a summary of
every answer is shown and the user confirms it (default yes) before anything is
written: no raises :class:`~generator.errors.Declined`.

Ctrl-C raises :class:`~generator.errors.Interrupted` (exit 130); the end of input
raises a :class:`~generator.errors.UsageError` (exit 2) that says Ctrl-D on a terminal.
Nothing is written by this module: the CLI renders only after :func:`confirm` returned.

Kept light: nothing here imports rich or cookiecutter, and the CLI imports this module
only when it asks questions.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from generator.errors import Declined, Interrupted, OptionError, UsageError
from generator.options import Options, OptionsBuilder, Question

#: What the user types to see an option's help instead of answering.
HELP_KEY = "?"

#: SGR codes of the few styles the session uses.
_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}

#: readline's markers around text that takes no room on the line (escape sequences in a
#: prompt); without them readline miscounts the prompt's width when it redraws a line.
_RL_START, _RL_END = "\x01", "\x02"


def colour_wanted(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Return whether to colour ``stream``: a terminal, ``NO_COLOR`` unset or empty."""
    if environ.get("NO_COLOR", "") != "" or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


@dataclass(frozen=True)
class Style:
    """Paints text with ANSI colours, or leaves it plain when colour is off.

    ``readline`` wraps each escape sequence in readline's markers, for text that goes
    into a prompt read by readline.
    """

    enabled: bool
    readline: bool = False

    def __call__(self, text: str, *styles: str) -> str:
        """Return ``text`` in the given styles (names of ``_CODES``)."""
        if not self.enabled or not styles or not text:
            return text
        start = f"\x1b[{';'.join(_CODES[name] for name in styles)}m"
        end = "\x1b[0m"
        if self.readline:
            start, end = f"{_RL_START}{start}{_RL_END}", f"{_RL_START}{end}{_RL_END}"
        return f"{start}{text}{end}"


@dataclass(frozen=True)
class Terminal:
    """Where a session reads and writes, and how it paints.

    ``read`` shows a prompt and returns one line without its newline; it raises
    EOFError at the end of input and KeyboardInterrupt on Ctrl-C, like :func:`input`.
    ``interactive`` is true when a person types (stdin is a terminal): the end of
    input is then Ctrl-D.
    """

    read: Callable[[str], str]
    out: TextIO
    err: TextIO
    interactive: bool
    style: Style
    prompt_style: Style
    err_style: Style

    @classmethod
    def from_stdio(cls, environ: Mapping[str, str] | None = None) -> Terminal:
        """Return the terminal of this process (stdin, stdout, stderr)."""
        environ = os.environ if environ is None else environ
        interactive = sys.stdin.isatty()
        editing = False
        if interactive:
            try:
                # input() edits the line through readline once it is imported, but only
                # when stdin and stdout are both terminals.
                import readline  # noqa: F401
            except ImportError:  # a Python built without it: plain input() still works
                pass
            else:
                editing = sys.stdout.isatty()
        out_colour = colour_wanted(sys.stdout, environ)
        return cls(
            read=input,
            out=sys.stdout,
            err=sys.stderr,
            interactive=interactive,
            style=Style(out_colour),
            prompt_style=Style(out_colour, readline=editing),
            err_style=Style(colour_wanted(sys.stderr, environ)),
        )

    def say(self, text: str = "") -> None:
        """Write one line to the output."""
        self.out.write(text + "\n")
        self.out.flush()

    def warn(self, text: str) -> None:
        """Write one line to the error stream."""
        self.out.flush()
        self.err.write(text + "\n")
        self.err.flush()

    def line(self, prompt: str, subject: str) -> str:
        """Read one answer; Ctrl-C and the end of input become servegen errors.

        ``subject`` names what was being asked, for the message.
        """
        self.out.flush()
        try:
            text = self.read(prompt)
        except KeyboardInterrupt:
            self._end_prompt_line()
            raise Interrupted(
                signal.SIGINT, f"interrupted (Ctrl-C) at {subject}; nothing was written"
            ) from None
        except EOFError:
            self._end_prompt_line()
            if self.interactive:
                raise UsageError(
                    f"input ended (Ctrl-D) before {subject} was answered; nothing was written"
                ) from None
            raise UsageError(
                f"input ended before {subject} was answered (pass --no-input to take the defaults)"
            ) from None
        if not self.interactive:
            # A terminal echoes the typed line and its newline; piped input is not
            # echoed, so end the prompt's line here: the next output starts on its own.
            self.out.write("\n")
        return text

    def _end_prompt_line(self) -> None:
        # The cursor is still on the prompt's line: the message goes below it.
        if self.interactive:
            self.out.write("\n")
            self.out.flush()


def shown(value: Any) -> str:
    """Return an answer as a person types it (``yes``/``no`` for booleans)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def prompt_text(question: Question, number: int, total: int, style: Style) -> str:
    """Return the prompt line of a question: progress, question, choices, default."""
    parts = [style(f"[{number}/{total}]", "dim"), style(question.text, "bold")]
    if question.choices:
        parts.append(
            "  ".join(
                f"{style(f'{index})', 'cyan')} {choice}"
                for index, choice in enumerate(question.choices, start=1)
            )
        )
    elif question.kind == "bool":
        parts.append("(yes/no)")
    parts.append(style(f"[{question.default}]", "green") + ": ")
    return " ".join(parts)


def help_lines(builder: OptionsBuilder, question: Question) -> list[str]:
    """Return what ``?`` shows for a question: the rule's help and what shaped it."""
    lines = [question.help]
    derived_from = builder.template.derived_from(question.key)
    if derived_from:
        lines.append(f"The default follows {', '.join(derived_from)} until you type a value.")
    if question.choices:
        lines.append("Type a number from the list or a value; Enter keeps the default.")
        for choice, reason in builder.excluded_choices(question.key):
            lines.append(f"Not offered: {choice} ({reason}).")
    elif question.kind == "bool":
        lines.append("Answer yes or no (y/n); Enter keeps the default.")
    lines.append(f"Option name: {question.key} (servegen new --set {question.key}=...).")
    return lines


def _remaining(builder: OptionsBuilder, keys: tuple[str, ...]) -> int:
    return sum(1 for key in keys if builder.needs_asking(key))


def ask(builder: OptionsBuilder, terminal: Terminal) -> int:
    """Ask every question that needs an answer; return how many were asked.

    A refused answer is asked again with the reason; a choice that the earlier answers
    narrow to one value is taken without asking (and said so).
    """
    keys = builder.template.keys
    asked = 0
    intro = "Answer each question; Enter keeps the value in [brackets], ? shows help."
    for index, key in enumerate(keys):
        if builder.is_given(key) or not builder.is_relevant(key):
            continue
        if not builder.needs_asking(key):  # a single allowed choice
            question = builder.question(key)
            builder.answer(key, question.default)
            terminal.say(
                terminal.style(f"{question.text}: {question.default} (the only choice)", "dim")
            )
            continue
        if asked == 0:
            terminal.say(intro)
        asked += 1
        while True:
            question = builder.question(key)
            total = asked + _remaining(builder, keys[index + 1 :])
            prompt = prompt_text(question, asked, total, terminal.prompt_style)
            text = terminal.line(prompt, repr(key))
            if text.strip() == HELP_KEY:
                for line in help_lines(builder, question):
                    terminal.say("    " + terminal.style(line, "dim"))
                continue
            try:
                builder.answer(key, text)
            except OptionError as exc:
                terminal.warn(f"  {terminal.err_style('invalid:', 'red', 'bold')} {exc.reason}")
                continue
            break
    return asked


def summary_lines(builder: OptionsBuilder, options: Options, style: Style) -> list[str]:
    """Return the summary: every option and its value, and why one was not asked."""
    keys = options.template.keys
    width = max(len(key) for key in keys)
    lines = []
    for key in keys:
        line = f"  {key.ljust(width)}  {style(shown(options[key]), 'bold')}"
        if not builder.is_relevant(key):
            rule = options.template.rule(key)
            needs = ", ".join(f"{name} is {shown(value)}" for name, value in rule.asked_when)
            line += style(f"  (not asked: used only when {needs})", "dim")
        lines.append(line)
    return lines


#: What the confirmation question says for each kind of destination (see render).
_ACTIONS = {
    "new": "Create {path}?",
    "empty": "Create the project in the empty folder {path}?",
    "project": "Render again into the project {path} (files you changed are kept)?",
}


def confirm(
    builder: OptionsBuilder, options: Options, target: Path, kind: str, terminal: Terminal
) -> None:
    """Show the summary and ask to go on (default yes); raise Declined on no.

    ``kind`` says what ``target`` is (``new``, ``empty`` or ``project``, as
    :func:`generator.render.check_destination` tells).
    """
    terminal.say()
    terminal.say(terminal.style("Summary", "bold"))
    for line in summary_lines(builder, options, terminal.style):
        terminal.say(line)
    action = _ACTIONS[kind].format(path=target)
    rules = options.template.rules
    while True:
        text = terminal.line(
            f"{terminal.prompt_style(action, 'bold')} {terminal.prompt_style('[Y/n]', 'green')}: ",
            "the confirmation",
        )
        answer = text.strip().lower()
        if answer == "" or answer in rules.TRUE_WORDS:
            return
        if answer in rules.FALSE_WORDS:
            raise Declined("nothing was written (answered no at the confirmation)")
        if answer == HELP_KEY:
            note = f"yes writes the project now; no writes nothing (exit {Declined.exit_code})."
            terminal.say("    " + terminal.style(note, "dim"))
            continue
        terminal.warn(f"  {terminal.err_style('invalid:', 'red', 'bold')} answer yes or no")
