"""The harness's failures: servegen's own error classes, plus the log that explains them.

Each class is the matching one of :mod:`generator.errors` (so the exit codes live in one
place) and also a :class:`HarnessError`, which carries the last lines of the log that
shows what went wrong (a build, a container) for the report. The exit codes are part of
the documented interface (docs/harness.md): 0 passed, 2 bad usage, 3 environment
missing, 4 build failed, 5 smoke test failed, 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import signal

from generator import errors

EXIT_PASSED = 0


class HarnessError(errors.ServegenError):
    """A harness failure with a one-line message, an exit code and an optional log tail."""

    def __init__(self, message: str, *, log_tail: list[str] | None = None, log_source: str = ""):
        super().__init__(message)
        self.log_tail = log_tail or []
        self.log_source = log_source


class UsageError(HarnessError, errors.UsageError):
    """The project directory or an option is not usable (exit code 2)."""


class EnvironmentMissing(HarnessError, errors.EnvironmentMissing):  # noqa: N818
    """Something the harness needs on this machine is missing: engine, Compose v2, disk (3)."""


class BuildFailed(HarnessError, errors.BuildFailed):  # noqa: N818
    """Lint, the wheelhouse or the image build failed (exit code 4)."""


class SmokeFailed(HarnessError, errors.SmokeFailed):  # noqa: N818
    """The stack did not start, did not become ready, answered wrongly, or leaked (5)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived during a run; a BaseException so no step swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """Return 128 + the signal number, as shells report a death by that signal."""
        return 128 + self.signum
