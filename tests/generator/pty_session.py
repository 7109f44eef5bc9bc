"""Drive ``servegen`` through a real pseudo-terminal, keystrokes included.

The child gets the pty as stdin, stdout and stderr *and* as its controlling terminal,
so the terminal's line discipline does what it does for a person: Ctrl-C (``\\x03``)
becomes SIGINT for the child, Ctrl-D (``\\x04``) on an empty line the end of input,
and ``isatty()`` is true, so servegen imports readline and colours its prompts.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

#: Keys as a terminal sends them (xterm, normal cursor mode).
ENTER = "\r"
LEFT = "\x1b[D"
CTRL_C = "\x03"
CTRL_D = "\x04"

# A session leader without a controlling terminal acquires the first terminal it
# opens: the child opens its own stdin's terminal, then becomes servegen.
_SHIM = (
    "import os, sys; os.close(os.open(os.ttyname(0), os.O_RDWR));"
    " os.execv(sys.executable, [sys.executable, '-m', 'generator', *sys.argv[1:]])"
)


class PtySession:
    """One ``servegen`` process on a pseudo-terminal, 200 columns wide."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        # Wide enough that no prompt wraps (a wrapped line is redrawn differently).
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.master = master
        self.output = b""
        self._mark = 0  # expect() looks only after what it matched before
        self._closed = False
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SHIM, *args],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(slave)

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the child closed the pty."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the terminal is gone
            return False
        self.output += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = 30.0) -> None:
        """Wait until ``text`` has appeared in the output since the last ``expect``."""
        needle = text.encode()
        deadline = time.monotonic() + timeout
        while needle not in self.output[self._mark :]:
            if time.monotonic() > deadline or not self._read(0.1):
                raise AssertionError(f"{text!r} never appeared; output so far:\n{self.text()}")
        self._mark = self.output.index(needle, self._mark) + len(needle)

    def send(self, keys: str) -> None:
        """Type ``keys`` into the terminal."""
        os.write(self.master, keys.encode())

    def interrupt(self) -> None:
        """Press Ctrl-C at the prompt just shown, once Python waits for a key.

        CPython's readline loop looks at a pending signal only when its select() is
        interrupted: a SIGINT that lands after the prompt is drawn but before select()
        starts waits for the next key (Modules/readline.c,
        readline_until_enter_or_signal). A person is never that fast; a test is, so
        it gives the child a moment first.
        """
        time.sleep(0.5)
        self.send(CTRL_C)

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for the child to exit, read the rest of its output, return its code."""
        # Keep reading while waiting: a child that fills the terminal's buffer blocks.
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"servegen did not exit; output so far:\n{self.text()!r}")
            self._read(0.1)
        while self._read(0.2):
            pass
        self.close()
        return self.process.returncode

    def text(self) -> str:
        """Return everything the child wrote, decoded."""
        return self.output.decode("utf-8", errors="replace")

    def close(self) -> None:
        """Stop the child if it still runs (a failed test must not leave it behind)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if not self._closed:
            self._closed = True
            os.close(self.master)
