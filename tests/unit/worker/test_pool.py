"""pool._serve: when a child offers itself for another caller, and when it does not.

Each case forks a child running _serve with a fake request step (no worker, no root) and
reads what it tells the worker on its control socket until it exits.
"""

import os
import socket
import threading
import time

import pytest

from cni_rkt.worker import pool, wire


def messages_until_exit(serve_one) -> list[bytes]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            ours.close()
            pool._serve_one = serve_one
            status = pool._serve(theirs, rehearse=False)
        finally:
            os._exit(status)
    theirs.close()
    told = []
    with ours:
        while True:
            try:
                told.append(wire.read_frame(ours)[0])
            except (OSError, wire.ProtocolError):
                break
    assert os.waitpid(pid, 0)[1] == 0
    return told


def requests(*outcomes):
    """A fake _serve_one: each call serves one request with the next outcome."""
    pending = list(outcomes)

    def serve_one(_control) -> bool:
        return pending.pop(0)() if pending else False  # False: the worker is gone

    return serve_one


def test_a_child_offers_itself_again_after_each_clean_request():
    assert messages_until_exit(requests(lambda: True, lambda: True)) == [pool.CHILD_READY, pool.CHILD_READY]


def test_not_after_a_request_that_says_it_must_not_serve_again():
    assert messages_until_exit(requests(lambda: True, lambda: False, lambda: True)) == [pool.CHILD_READY]


@pytest.mark.parametrize("leftover", ["thread", "fd"])
def test_not_after_a_request_that_left_a_thread_or_an_open_fd(leftover):
    def leaves_something() -> bool:
        if leftover == "thread":
            threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
        else:
            os.open("/dev/null", os.O_RDONLY)  # could have been a caller's namespace
        return True

    assert messages_until_exit(requests(lambda: True, leaves_something, lambda: True)) == [pool.CHILD_READY]


def test_a_child_ends_after_its_share_of_requests(monkeypatch):
    monkeypatch.setattr(pool, "MAX_REQUESTS_PER_CHILD", 3)  # inherited by the fork
    assert messages_until_exit(requests(*[lambda: True] * 10)) == [pool.CHILD_READY] * 3
