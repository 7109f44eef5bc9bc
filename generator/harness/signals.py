"""SIGINT/SIGTERM during a run become an exception; during clean-up they are held off.

Turning the signal into :class:`Interrupted` lets every ``finally`` run (the build child
is stopped, the stack torn down). While tearing down, a second Ctrl-C must not cut the
clean-up short, so the handler then only notes it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from generator.errors import Interrupted

HANDLED = (signal.SIGINT, signal.SIGTERM)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _hold(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    sys.stderr.write(f"\n{name} received: still cleaning up, this takes a few seconds\n")


@contextmanager
def _installed(handler: Any) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        # Signal handlers can only be set from the main thread; elsewhere keep Python's.
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    for signum in HANDLED:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def raising() -> Any:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted`."""
    return _installed(_raise)


def held() -> Any:
    """Within the block, SIGINT and SIGTERM only print a note (used during tear-down)."""
    return _installed(_hold)
