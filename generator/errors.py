"""The one exception hierarchy of servegen.

Deep code raises these with a message meant for the user; only the CLI turns them into
an exit code (``error: <message>`` on stderr, no traceback). Each class carries the
exit code that the CLI and the test harness use, so the mapping lives here once.
"""

from __future__ import annotations


class ServegenError(Exception):
    """Base class: a failure whose message is written for the user."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def user_message(self) -> str:
        """Return the one-line message shown after ``error:``."""
        return " ".join(self.message.split())


class UsageError(ServegenError):
    """The command line is wrong (bad flag value, missing file, existing destination)."""

    exit_code = 2


class OptionError(UsageError):
    """An answer breaks a rule of the template; ``key`` names the option."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class RenderError(ServegenError):
    """The template failed to render (a template bug or an unwritable destination)."""

    exit_code = 1


class EnvironmentMissing(ServegenError):  # noqa: N818 - the name the harness imports
    """A tool the command needs is absent: no Docker engine, no compose v2, no disk."""

    exit_code = 3


class BuildFailed(ServegenError):  # noqa: N818 - the name the harness imports
    """The project's image did not build."""

    exit_code = 4


class SmokeFailed(ServegenError):  # noqa: N818 - the name the harness imports
    """The stack started but a smoke check (health, ready, predict, database) failed."""

    exit_code = 5


class ChangesKept(ServegenError):  # noqa: N818 - a status: the render itself completed
    """A render into an existing project kept generated files that the user changed.

    Everything else was brought up to the new render. The new version of each kept file
    is beside it as ``<name>.servegen-new`` (a file the new render no longer generates is
    simply left in place); the CLI lists them before this message. Exit code 6 tells a
    script that someone has to merge.
    """

    exit_code = 6
