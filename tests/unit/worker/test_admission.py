"""Who the worker serves: a caller must not get more privilege through it than it has.

Each case forks a caller that confines itself the way a sandboxed service or runtime is
confined (seccomp, no_new_privs, a smaller capability bounding set), and asks admission
about it while it waits; the forked caller is ended by its PID.
"""

import ctypes
import os
import struct
from contextlib import contextmanager

from conftest import needs_root

from cni_rkt.worker import admission

PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECCOMP = 38, 24, 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
BPF_RET_K = 0x06
CAP_NET_ADMIN = 12

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(*args: int) -> None:
    if _libc.prctl(*(ctypes.c_ulong(a) for a in args)) != 0:
        raise OSError(ctypes.get_errno(), "prctl")


def no_new_privs() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def allow_all_seccomp_filter() -> None:
    """A seccomp filter that allows every call: confined in name only, as /proc shows it."""
    program = ctypes.create_string_buffer(struct.pack("HBBI", BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    fprog = struct.pack("HxxxxxxP", 1, ctypes.addressof(program))  # struct sock_fprog
    fprog_buffer = ctypes.create_string_buffer(fprog)
    _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog_buffer), 0, 0)


def drop_net_admin_from_bounding_set() -> None:
    _prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0)


@contextmanager
def caller(confine):
    """A forked process of ours that ran `confine` and waits; yields its PID."""
    ready_read, ready_write = os.pipe()
    hold_read, hold_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(ready_read)
            os.close(hold_write)
            confine()
            os.write(ready_write, b"1")
            os.read(hold_read, 1)
            status = 0
        finally:
            os._exit(status)
    os.close(ready_write)
    os.close(hold_read)
    try:
        assert os.read(ready_read, 1) == b"1", "the caller could not confine itself"
        yield pid
    finally:
        os.close(hold_write)
        os.close(ready_read)
        os.waitpid(pid, 0)


def test_an_unconfined_caller_like_the_worker_is_served():
    with caller(lambda: None) as pid:
        assert admission.peer_refusal(pid, os.geteuid()) == ""


def test_a_caller_with_no_new_privs_is_refused():
    with caller(no_new_privs) as pid:
        assert "confinement" in admission.peer_refusal(pid, os.geteuid())


@needs_root
def test_a_caller_under_a_seccomp_filter_is_refused():
    with caller(allow_all_seccomp_filter) as pid:
        assert "confinement" in admission.peer_refusal(pid, os.geteuid())


@needs_root
def test_a_caller_with_a_smaller_capability_bounding_set_is_refused():
    with caller(drop_net_admin_from_bounding_set) as pid:
        assert "capabilities" in admission.peer_refusal(pid, os.geteuid())
