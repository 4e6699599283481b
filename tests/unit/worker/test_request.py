"""A worker's child takes on a caller's root directory and puts its own back (root only:
chroot). Each case runs in a forked process of ours, reaped by PID, so the test process
keeps its own root."""

import os

from conftest import needs_root
from worker_process import in_a_fork

from cni_rkt.worker.request import OwnContext, change_root


@needs_root
def test_the_callers_root_is_taken_on_and_our_own_put_back(tmp_path):
    """Even from a root without /proc, where the namespace checks cannot look."""
    (tmp_path / "only-in-the-callers-root").touch()
    real_root = sorted(os.listdir("/"))

    def serve_a_chrooted_caller():
        own = OwnContext.save()
        callers_root = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY)
        change_root(callers_root)
        seen = sorted(os.listdir("/"))
        own.restore()
        return seen, sorted(os.listdir("/"))

    assert in_a_fork(serve_a_chrooted_caller) == f"returned {(['only-in-the-callers-root'], real_root)!r}"


def test_a_caller_in_our_root_needs_no_chroot():
    """No CAP_SYS_CHROOT needed (a worker of a non-root user) when the roots are the same."""

    def take_on_the_same_root_unprivileged():
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        root = os.open("/", os.O_PATH | os.O_DIRECTORY)
        change_root(root)
        return os.stat("/").st_ino == os.fstat(root).st_ino

    assert in_a_fork(take_on_the_same_root_unprivileged) == "returned True"
