"""pool._serve: when a child offers itself for another caller, and when it does not.

Each case forks a child (pool.fork_child) with a fake request step (no worker, no root)
and reads what it tells the worker on its control socket until it exits.
"""

import os
import threading
import time

import pytest

from cni_rkt.worker import pool, wire


def messages_until_exit(serve_one, monkeypatch) -> list[bytes]:
    monkeypatch.setattr(pool, "_serve_one", serve_one)  # before the fork: the child has it
    child = pool.fork_child([], rehearse=False)
    told = []
    with child.control:
        while True:
            try:
                told.append(wire.read_frame(child.control)[0])
            except (OSError, wire.ProtocolError):
                break
    assert os.waitpid(child.pid, 0)[1] == 0
    return told


def requests(*outcomes):
    """A fake _serve_one: each call serves one request with the next outcome."""
    pending = list(outcomes)

    def serve_one(_control) -> bool:
        return pending.pop(0)() if pending else False  # False: the worker is gone

    return serve_one


def test_a_child_offers_itself_again_after_each_clean_request(monkeypatch):
    assert messages_until_exit(requests(lambda: True, lambda: True), monkeypatch) == [pool.CHILD_READY, pool.CHILD_READY]


def test_not_after_a_request_that_says_it_must_not_serve_again(monkeypatch):
    assert messages_until_exit(requests(lambda: True, lambda: False, lambda: True), monkeypatch) == [pool.CHILD_READY]


@pytest.mark.parametrize("leftover", ["thread", "fd"])
def test_not_after_a_request_that_left_a_thread_or_an_open_fd(leftover, monkeypatch):
    def leaves_something() -> bool:
        if leftover == "thread":
            threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
        else:
            os.open("/dev/null", os.O_RDONLY)  # could have been a caller's namespace
        return True

    assert messages_until_exit(requests(lambda: True, leaves_something, lambda: True), monkeypatch) == [pool.CHILD_READY]


def test_a_child_ends_after_its_share_of_requests(monkeypatch):
    monkeypatch.setattr(pool, "MAX_REQUESTS_PER_CHILD", 3)  # inherited by the fork
    # ready after the first two only: after the third it exits instead of offering itself
    assert messages_until_exit(requests(*[lambda: True] * 10), monkeypatch) == [pool.CHILD_READY] * 2


def test_what_waits_for_the_reply_runs_after_the_callers_stderr_is_let_go(tmp_path):
    """The caller's runtime reads the plugin's stderr to its end: a child still holding it
    while it finishes would keep the runtime waiting as if there were no early reply."""
    from cni_rkt import background
    from cni_rkt.worker.request import OwnContext

    own = OwnContext.save()
    saved_stderr = os.dup(2)
    caller_read, caller_write = os.pipe()
    seen = []
    try:
        os.dup2(caller_write, 2)  # as become_caller leaves it
        os.close(caller_write)
        background.allow_finishing_after_reply()
        background.finish_after_reply(lambda: seen.append(os.fstat(2).st_ino))
        assert pool._finish_after_reply(own) is True
        os.set_blocking(caller_read, False)
        assert os.read(caller_read, 1) == b""  # end of file: no one holds the caller's pipe
    finally:
        os.dup2(saved_stderr, 2)
        for fd in (saved_stderr, caller_read, own.netns, own.mntns, own.root, own.cwd, own.stderr):
            os.close(fd)
    assert seen == [os.fstat(2).st_ino]
