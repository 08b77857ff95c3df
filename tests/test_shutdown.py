"""SIGTERM unwinds like Ctrl-C, and a critical section finishes before either acts."""

import os
import signal

import pytest

from facecap.shutdown import Terminated, signals_deferred, sigterm_raises


def test_sigterm_raises_terminated_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    cleaned = []
    with pytest.raises(Terminated):
        with sigterm_raises():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                cleaned.append("not reached")
            finally:
                cleaned.append(True)
    assert cleaned == [True] and signal.getsignal(signal.SIGTERM) == before


def test_signals_wait_for_the_end_of_a_critical_section(sigint_interrupts):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            done.append("first")
            done.append("second")
    assert done == ["first", "second"]
    with pytest.raises(Terminated):
        with sigterm_raises(), signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("third")
    assert done[-1] == "third"
