"""Child processes: output collected, a quiet child stopped at its timeout, none orphaned."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from generator.harness import proc


def test_output_is_collected_line_by_line_and_passed_on() -> None:
    seen: list[str] = []
    result = proc.run(["sh", "-c", "echo one; echo two >&2; exit 3"], on_line=seen.append)
    assert (result.returncode, result.lines, seen) == (3, ["one", "two"], ["one", "two"])
    assert not result.ok
    assert not result.timed_out


def test_a_quiet_child_is_stopped_at_its_timeout() -> None:
    begin = time.monotonic()
    result = proc.run(["sh", "-c", "echo waiting; exec sleep 60"], timeout=1.0)
    assert result.timed_out
    assert result.lines == ["waiting", "(stopped after 1 s)"]
    assert time.monotonic() - begin < 15


def test_an_exception_while_reading_stops_the_child_and_its_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"

    def boom(line: str) -> None:
        raise RuntimeError("stop here")

    # The grandchild (sleep) shares the child's process group and must die with it.
    script = f"sleep 60 & echo $! > {pidfile}; echo started; wait"
    with pytest.raises(RuntimeError, match="stop here"):
        proc.run(["sh", "-c", script], on_line=boom)
    grandchild = int(pidfile.read_text().split()[0])
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie counts as gone: it is not running, only not yet reaped by its parent.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_status_line_prints_plain_lines_when_not_on_a_terminal() -> None:
    out = io.StringIO()
    status = proc.StatusLine("building", out)
    status("#1 load build definition")
    status.close()
    assert out.getvalue() == "  #1 load build definition\n"


def test_status_line_redraws_one_line_on_a_terminal() -> None:
    out = io.StringIO()
    status = proc.StatusLine("building", out, live=True)
    status("#1 first")
    status("#2 second")
    status.close()
    text = out.getvalue()
    assert "\n" not in text
    assert text.count("\r") >= 3
    assert "#2 second" in text
    assert text.endswith("\r")


def test_last_line_is_the_last_one_that_says_something() -> None:
    assert proc.last_line(["ERROR: first", "  the reason  ", "", "   "]) == "the reason"
    assert proc.last_line("one\ntwo\n\n") == "two"
    assert proc.last_line([]) == "no output"
    assert proc.last_line(["", " "], "compose failed without a message") == (
        "compose failed without a message"
    )
