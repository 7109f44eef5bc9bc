"""Run child processes (compose, pip) so that an interrupted run never orphans one.

Children start in their own session: a Ctrl-C at the terminal reaches only the harness,
which then stops the child itself (SIGINT, then SIGKILL after a grace period) before it
tears the stack down. A child that shared our process group would get the same Ctrl-C and
could die half-way through ``compose down`` during clean-up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

#: Seconds a child gets to stop after SIGINT before it is killed.
STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Result:
    """What a finished child process returned and printed (stdout and stderr merged)."""

    returncode: int
    lines: list[str]
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the child exited with status 0."""
        return self.returncode == 0

    def tail(self, count: int = 50) -> list[str]:
        """Return the last ``count`` lines of output."""
        return self.lines[-count:]


def last_line(output: str | Iterable[str], default: str = "no output") -> str:
    """Return the last line of a log that is not blank, stripped (``default`` for none).

    What a failing tool prints last is usually why it failed: the harness and the
    benchmarks quote it in their one-line messages.
    """
    lines = output.splitlines() if isinstance(output, str) else list(output)
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return default


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    on_line: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> Result:
    """Run ``argv``, collecting its output line by line and passing each to ``on_line``.

    Any exception while the child runs (the harness's SIGINT/SIGTERM exception included)
    stops the child before it propagates.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    lines: list[str] = []
    # A timer, not a check per line: a child waiting quietly prints nothing to check on.
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        stop(proc)

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\r\n")
            lines.append(line)
            if on_line is not None:
                on_line(line)
        returncode = proc.wait()
    except BaseException:
        stop(proc)
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    if expired.is_set():
        lines.append(f"(stopped after {timeout:.0f} s)")
        return Result(returncode, lines, timed_out=True)
    return Result(returncode, lines)


def stop(proc: subprocess.Popen[str]) -> None:
    """Ask a child's process group to stop (SIGINT), then kill it after a grace period."""
    if proc.poll() is not None:
        return
    _signal_group(proc.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_GRACE_SECONDS)
    # Also ends what the child started and left behind (the docker CLI runs the compose
    # plugin as its own child, in the same group).
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


class StatusLine:
    """Shows a child's progress: one live line on a terminal, plain lines otherwise.

    The live line keeps the terminal tidy during a long build while the full output is
    still collected for the report. A ticker redraws it every second, so the elapsed time
    keeps moving while a quiet step (installing torch) prints nothing.
    """

    def __init__(self, label: str, stream: TextIO | None = None, live: bool | None = None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.live = live if live is not None else self.stream.isatty()
        self.started = time.monotonic()
        self._width = 0
        self._last = ""
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def __call__(self, line: str) -> None:
        """Show one line of the child's output."""
        if not self.live:
            self.stream.write(f"  {line}\n")
            return
        if line.strip():
            self._last = line.strip()
        self._draw()

    def _tick(self) -> None:
        while not self._stopped.wait(1.0):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            elapsed = time.monotonic() - self.started
            text = f"{self.label} {elapsed:5.0f}s  {self._last}"[: _terminal_columns() - 1]
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self.stream.flush()

    def close(self) -> None:
        """Stop the ticker and clear the live line so later output starts cleanly."""
        with self._lock:
            self._stopped.set()
            if self.live and self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0
        if self._ticker is not None:
            self._ticker.join()


def _terminal_columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 100
