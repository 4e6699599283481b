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
from worker_process import drop_net_admin_from_bounding_set, prctl

from cni_rkt.worker import admission

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 38, 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
BPF_RET_K = 0x06


def no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def allow_all_seccomp_filter() -> None:
    """A seccomp filter that allows every call: confined in name only, as /proc shows it."""
    program = ctypes.create_string_buffer(struct.pack("HBBI", BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    fprog = struct.pack("HxxxxxxP", 1, ctypes.addressof(program))  # struct sock_fprog
    fprog_buffer = ctypes.create_string_buffer(fprog)
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog_buffer), 0, 0)


@contextmanager
def caller(confine):
    """A forked process of ours that ran `confine` and waits; yields its PID and a pidfd."""
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
        pidfd = os.pidfd_open(pid)
        try:
            yield pid, pidfd
        finally:
            os.close(pidfd)
    finally:
        os.close(hold_write)
        os.close(ready_read)
        os.waitpid(pid, 0)


def test_an_unconfined_caller_like_the_worker_is_served():
    with caller(lambda: None) as (pid, pidfd):
        assert admission.peer_refusal(pid, os.geteuid(), pidfd) == ""


def test_a_caller_with_no_new_privs_is_refused():
    with caller(no_new_privs) as (pid, pidfd):
        assert "confinement" in admission.peer_refusal(pid, os.geteuid(), pidfd)


@needs_root
def test_a_caller_under_a_seccomp_filter_is_refused():
    with caller(allow_all_seccomp_filter) as (pid, pidfd):
        assert "confinement" in admission.peer_refusal(pid, os.geteuid(), pidfd)


@needs_root
def test_a_caller_with_a_smaller_capability_bounding_set_is_refused():
    with caller(drop_net_admin_from_bounding_set) as (pid, pidfd):
        assert "capabilities" in admission.peer_refusal(pid, os.geteuid(), pidfd)
