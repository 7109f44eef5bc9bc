"""``servegen new`` as a person meets it: a real terminal, keys typed one line at a time.

Each test waits for a prompt before it types, as a person does, and types what a
terminal sends: the left arrow as ``ESC [ D``, Ctrl-C as ``\\x03``, Ctrl-D as ``\\x04``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pty_session import CTRL_D, ENTER, LEFT, PtySession

#: An SGR sequence (colour, bold): readline's own cursor movements are not colour.
SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def terminal_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a person's terminal: xterm, colour allowed, no readline config."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "TERM": "xterm", "INPUTRC": os.devnull, "HOME": str(home)}
    env.pop("NO_COLOR", None)
    return env


@pytest.fixture
def spawn(tmp_path: Path, terminal_env: dict[str, str]) -> Iterator[object]:
    """Start ``servegen`` on a pty in an empty ``work`` folder; stop it after the test."""
    work = tmp_path / "work"
    work.mkdir()
    sessions: list[PtySession] = []

    def start(*args: str, env: dict[str, str] | None = None) -> PtySession:
        session = PtySession(*args, cwd=work, env=env or terminal_env)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


def _work(tmp_path: Path) -> Path:
    return tmp_path / "work"


def test_a_whole_session_typed_on_a_terminal(tmp_path: Path, spawn) -> None:
    term = spawn("new")
    term.expect("[1/16]")
    # A typo fixed with the left arrow: readline edits the line, no ESC in the answer.
    term.send(f"Fraud Scoer{LEFT}{LEFT}r{ENTER}")
    term.expect("[2/16]")
    term.expect("[fraud-scorer]")  # the slug follows the corrected name
    for number in (2, 3, 4, 5):
        if number > 2:
            term.expect(f"[{number}/16]")
        term.send(ENTER)
    term.expect("[6/16]")
    term.expect("3.13")
    term.send(f"?{ENTER}")  # help on request, then the same question again
    term.expect("Python of the image and the project's venv.")
    term.expect("[6/16]")
    term.send(f"3{ENTER}")  # picked by its number: 3.13
    term.expect("[7/16]")
    term.expect(": ")
    torch_prompt = SGR.sub("", term.text().rsplit("[7/16]", 1)[1])
    assert "1) 2.13.0  2) 2.9.1 [2.13.0]" in torch_prompt  # 2.5.1 has no 3.13 wheels
    term.send(f"2.5.1{ENTER}")  # typed anyway: refused with the reason, asked again
    term.expect("torch 2.5.1 has no wheels for Python 3.13 (supported: 3.11, 3.12)")
    term.expect("[7/16]")
    term.send(f"2{ENTER}")
    term.expect("[8/16]")
    term.send(f"CPU{ENTER}")  # any letter case
    for number in (9, 10, 11, 12):
        term.expect(f"[{number}/16]")
        term.send(ENTER)
    term.expect("[13/16]")
    term.send(f"no{ENTER}")  # no batching: its size and wait cannot matter
    term.expect("[14/14]")  # the count follows: two questions fewer
    term.send(ENTER)
    term.expect("Summary")
    term.expect("[Y/n]")
    assert not (_work(tmp_path) / "fraud-scorer").exists(), "written before the confirmation"
    term.send(ENTER)  # the default is yes
    term.expect("Next steps")
    assert term.finish() == 0, term.text()

    plain = SGR.sub("", term.text())
    assert "[15/" not in plain, "a batching question was asked after 'no'"
    assert "batch_max_size     32  (not asked: used only when batching is yes)" in plain
    assert "Created " in plain and "cd fraud-scorer" in plain
    assert SGR.search(term.text()), "no colour on a terminal"
    recorded = yaml.safe_load(
        (_work(tmp_path) / "fraud-scorer" / ".servegen-answers.yml").read_text(encoding="utf-8")
    )
    assert recorded["project_name"] == "Fraud Scorer"
    assert recorded["python_version"] == "3.13"
    assert recorded["torch_version"] == "2.9.1"
    assert recorded["accelerator"] == "cpu"
    assert recorded["batching"] is False
    assert (recorded["batch_max_size"], recorded["batch_max_wait_ms"]) == (32, 5)


def test_no_color_turns_colour_off(tmp_path: Path, spawn, terminal_env) -> None:
    term = spawn("new", "--set", "project_name=Plain", env={**terminal_env, "NO_COLOR": "1"})
    term.expect("[1/15]")
    term.send(ENTER)
    term.expect("[2/15]")
    term.interrupt()  # Ctrl-C
    assert term.finish() == 130
    assert not SGR.search(term.text()), repr(term.text())


def test_ctrl_c_at_a_prompt_writes_nothing(tmp_path: Path, spawn) -> None:
    term = spawn("new")
    term.expect("[1/16]")
    term.send(f"Half typed{ENTER}")
    term.expect("[2/16]")
    term.interrupt()  # Ctrl-C
    assert term.finish() == 130, term.text()
    assert "error: interrupted (Ctrl-C) at 'project_slug'; nothing was written" in term.text()
    assert "Traceback" not in term.text()
    assert list(_work(tmp_path).iterdir()) == []


def test_ctrl_d_at_a_prompt_writes_nothing(tmp_path: Path, spawn) -> None:
    term = spawn("new", "--set", "project_name=Ended")
    term.expect("[1/15]")
    term.send(ENTER)
    term.expect("[2/15]")
    term.send(CTRL_D)
    assert term.finish() == 2, term.text()
    message = "error: input ended (Ctrl-D) before 'package_name' was answered; nothing was written"
    assert message in term.text()
    assert "interrupted" not in term.text()
    assert list(_work(tmp_path).iterdir()) == []


def test_ctrl_c_at_the_confirmation_writes_nothing(tmp_path: Path, spawn) -> None:
    term = spawn("new", "--set", "project_name=Last", "-s", "batching=no")
    _answer_all(term, 12)
    term.expect("[Y/n]")
    term.interrupt()  # Ctrl-C
    assert term.finish() == 130, term.text()
    assert "interrupted (Ctrl-C) at the confirmation; nothing was written" in term.text()
    assert list(_work(tmp_path).iterdir()) == []


def test_no_at_the_confirmation_writes_nothing(tmp_path: Path, spawn) -> None:
    term = spawn("new", "--set", "project_name=Declined", "-s", "batching=no")
    _answer_all(term, 12)
    term.expect("[Y/n]")
    term.send(f"n{ENTER}")
    assert term.finish() == 7, term.text()
    assert "stopped: nothing was written (answered no at the confirmation)" in term.text()
    assert list(_work(tmp_path).iterdir()) == []


def _answer_all(term: PtySession, total: int) -> None:
    """Keep every default of ``total`` questions."""
    for number in range(1, total + 1):
        term.expect(f"[{number}/{total}]")
        term.send(ENTER)
