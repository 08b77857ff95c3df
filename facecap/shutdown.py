"""Signals as exceptions: SIGTERM unwinds like Ctrl-C, and a critical section finishes before either does.

A command killed with SIGTERM (a job scheduler's stop, ``kill``, a container's shutdown) must clean
up as it does for Ctrl-C: remove its staging folder, close its video writers. :func:`sigterm_raises`
turns SIGTERM into :class:`Terminated`, raised in the main thread wherever it is, so that ``finally``
blocks and context managers run. :func:`signals_deferred` holds SIGINT and SIGTERM back while a few
renames publish a run, and delivers them after. Python runs signal handlers in the main thread only,
so both act there and do nothing in other threads.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Terminated", "sigterm_raises", "signals_deferred", "SIGTERM_EXIT_CODE"]

SIGTERM_EXIT_CODE = 128 + signal.SIGTERM  # the shell's code for a process ended by SIGTERM


class Terminated(BaseException):
    """The process received SIGTERM. A BaseException, like KeyboardInterrupt, so that ``except Exception``
    does not swallow it."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread; the previous handler is
    restored after."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are recorded, not acted on; on leaving it, each one received
    is raised again, so that its usual handler (KeyboardInterrupt, :class:`Terminated`) runs then."""
    if not _in_main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in dict.fromkeys(received):
            signal.raise_signal(sig)
