"""Admission against a caller that cheats on who it is (root only: it recycles a PID).

The worker learns its caller's PID from the connection (SO_PEERCRED) and reads the
caller's capabilities and confinement from /proc/<pid>. A less privileged caller that
exits before its request is complete, and whose PID a fully privileged process then
gets, must not pass for that process. The worker here has a private socket dir and is
ended by PID (running_worker); every forked process is reaped by PID.
"""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager

from conftest import needs_root
from worker_process import drop_net_admin_from_bounding_set, request_key, running_worker

from cni_rkt.worker import client, wire

NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"
PID_ATTEMPTS = 200  # another process on the machine may take the PID first


def _connect_and_send_all_but_the_last_byte(sock: socket.socket, path: str, confine) -> int:
    """A forked child runs `confine`, connects `sock` (which we share) to `path`, sends a
    whole request with its fds but for the last byte, and exits. Its PID, reaped."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            confine()
            sock.connect(path)
            frame = wire.encode_fields([wire.PROTOCOL, request_key(), b"host-local", b"18",
                                        wire.encode_environ({"CNI_COMMAND": "DEL"}), b"{}"])
            rights = b"".join(fd.to_bytes(4, sys.byteorder) for fd in client._namespace_fds())
            sock.sendmsg([frame[:-1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert status == 0, "the confined caller failed"
    return pid


@contextmanager
def privileged_process_with_pid(wanted: int):
    """A waiting fork of ours (root, all capabilities) with PID `wanted`; yields whether we got one."""
    for _attempt in range(PID_ATTEMPTS):
        read_end, write_end = os.pipe()
        with open(NS_LAST_PID, "w") as f:
            f.write(str(wanted - 1))
        pid = os.fork()
        if pid == 0:
            os.close(write_end)
            os.read(read_end, 1)
            os._exit(0)
        os.close(read_end)
        if pid != wanted:
            os.close(write_end)
            os.waitpid(pid, 0)
            continue
        try:
            yield True
        finally:
            os.close(write_end)
            os.waitpid(pid, 0)
        return
    yield False


@needs_root
def test_a_less_privileged_caller_whose_pid_was_recycled_is_not_served(tmp_path):
    with running_worker(str(tmp_path / "sockets")) as (_proc, path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            caller = _connect_and_send_all_but_the_last_byte(sock, path, drop_net_admin_from_bounding_set)
            with privileged_process_with_pid(caller) as recycled:
                assert recycled, f"no process of ours got PID {caller} again"
                sock.sendall(b"}")
                sock.settimeout(30)
                answer = wire.read_frame(sock)
        assert answer == [b"refused", b"caller exited before it could be checked"], answer
