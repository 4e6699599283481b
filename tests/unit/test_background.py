"""BackgroundCall: the caller goes on while the call runs; its outcome comes back at wait()."""

import signal
import threading
import time

import pytest

from cni_rkt.background import BackgroundCall


def test_the_caller_goes_on_while_the_call_runs_and_gets_its_value():
    started, release = threading.Event(), threading.Event()

    def work():
        started.set()
        return "done" if release.wait(5) else "the caller was blocked"

    call = BackgroundCall("test", work)
    assert started.wait(5)  # the call runs, and the caller is here: not blocked by it
    release.set()
    assert call.wait() == "done"


def test_what_the_call_raised_is_raised_by_wait():
    def fail():
        raise ValueError("from the background")

    call = BackgroundCall("test", fail)
    with pytest.raises(ValueError, match="from the background"):
        call.wait()


def test_an_interrupted_wait_still_lets_the_call_finish_first():
    """SIGTERM in a worker's child raises SystemExit wherever it lands; if it lands in
    wait(), the undo that follows must not run while the call is still at work."""
    finished = threading.Event()

    def work():
        time.sleep(0.3)
        finished.set()

    def interrupt(_signum, _frame):
        raise SystemExit(143)

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        call = BackgroundCall("test", work)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(SystemExit):
            call.wait()
        assert finished.is_set()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_steps_wait_for_the_reply_only_where_a_reply_goes_first():
    from cni_rkt import background

    ran = []
    background.finish_after_reply(lambda: ran.append("now"))  # no reply goes first here: it runs at once
    assert ran == ["now"]
    background.allow_finishing_after_reply()
    try:
        background.finish_after_reply(lambda: ran.append("first"))
        background.finish_after_reply(lambda: 1 / 0)
        background.finish_after_reply(lambda: ran.append("third"))
        assert ran == ["now"]
    finally:
        with pytest.raises(ZeroDivisionError):  # raised once every step ran
            background.finish_what_waited_for_the_reply()
    assert ran == ["now", "first", "third"]
    assert not background.finishing_after_reply_allowed()
