"""The one exception hierarchy of servegen.

Deep code raises these with a message meant for the user. Each class knows its exit
code and the outcome word that a report shows for it; :func:`generator.cli.report_error`
is the one place that turns a raised error into ``error: <message>`` on stderr and that
exit code. An error whose run report already said what went wrong (``servegen test``
prints its own table) is marked ``reported`` and ends the command with its code alone.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import ClassVar


class ServegenError(Exception):
    """Base class: a failure whose message is written for the user.

    ``log_tail`` holds the last lines of the log that explains the failure (a build, a
    container), ``log_source`` names that log; the harness's report shows them.
    """

    exit_code: ClassVar[int] = 1
    outcome: ClassVar[str] = "failed"
    #: The word before the message on stderr: ``error: <message>``.
    label: ClassVar[str] = "error"

    def __init__(self, message: str, *, log_tail: Sequence[str] = (), log_source: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log_tail = list(log_tail)
        self.log_source = log_source
        #: set once a report has shown this error, so the CLI does not repeat it
        self.reported = False

    def user_message(self) -> str:
        """Return the one-line message shown after ``error:``."""
        return " ".join(self.message.split())


class UsageError(ServegenError):
    """The command line is wrong (bad flag value, missing file, existing destination)."""

    exit_code = 2
    outcome = "usage error"


class OptionError(UsageError):
    """An answer breaks a rule of the template; ``key`` names the option."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class RenderError(ServegenError):
    """The template failed to render (a template bug or an unwritable destination)."""

    exit_code = 1
    outcome = "render failed"


class InternalError(ServegenError):
    """A failure servegen did not foresee: a bug, reported in one line all the same."""

    exit_code = 1
    outcome = "failed"


class EnvironmentMissing(ServegenError):  # noqa: N818 - named for the outcome it reports
    """A tool the command needs is absent: no Docker engine, no compose v2, no disk."""

    exit_code = 3
    outcome = "environment missing"


class BuildFailed(ServegenError):  # noqa: N818 - named for the outcome it reports
    """Lint, the wheelhouse or the project's image build failed."""

    exit_code = 4
    outcome = "build failed"


class SmokeFailed(ServegenError):  # noqa: N818 - named for the outcome it reports
    """The stack did not start, did not get ready, answered wrongly, or leaked."""

    exit_code = 5
    outcome = "smoke failed"


class ChangesKept(ServegenError):  # noqa: N818 - a status: the render itself completed
    """A render into an existing project kept generated files that the user changed.

    Everything else was brought up to the new render. The new version of each kept file
    is beside it as ``<name>.servegen-new`` (a file the new render no longer generates is
    simply left in place); the CLI lists them before this message. Exit code 6 tells a
    script that someone has to merge.
    """

    exit_code = 6
    outcome = "changes kept"


class Declined(ServegenError):  # noqa: N818 - named for the outcome it reports
    """The user answered no when asked to confirm the answers; nothing was written.

    Not a failure, so its line starts with ``stopped:``; exit code 7 tells a script
    that the command ended by choice, before anything was written.
    """

    exit_code = 7
    outcome = "declined"
    label = "stopped"


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived during a run.

    A BaseException (like KeyboardInterrupt), so that no ``except Exception`` of a step
    swallows it; it still carries an exit code and an outcome word like the errors above.
    """

    outcome: ClassVar[str] = "interrupted"

    label: ClassVar[str] = "error"

    def __init__(self, signum: int, message: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.message = message or f"interrupted by {signal.Signals(signum).name}"
        self.reported = False

    @property
    def exit_code(self) -> int:
        """Return 128 + the signal number, as shells report a death by that signal."""
        return 128 + self.signum

    def user_message(self) -> str:
        """Return the one-line message shown after ``error:``."""
        return self.message
