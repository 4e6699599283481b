"""Who a worker serves, and the reason it gives anyone else (who then runs in-process).

A caller is served when it has the worker's own uid, is in the same user namespace, has the
same capabilities and the same confinement (seccomp, no_new_privs), so that a request never
runs with more privilege than its caller would have, and its request key names this
version, installation and code on disk.
"""

from __future__ import annotations

import functools
import os
import signal
import socket

STALE = "stale"
STALE_CODE = f"{STALE}: the code changed since this worker started"


SO_PEERPIDFD = 77  # Linux 6.5; not in Python 3.11's socket module


def caller_pidfd(conn: socket.socket, pid: int) -> int | None:
    """A handle on the process that connected, taken before its request is read (None if
    it is gone or none could be taken, e.g. out of fds): its PID alone could name another
    process by the time we look at it."""
    try:
        return conn.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
    except OSError:
        pass  # an older kernel: the process with that PID now, a moment after the connect
    try:
        return os.pidfd_open(pid)
    except (OSError, ValueError):
        return None


def peer_refusal(pid: int, uid: int, pidfd: int | None) -> str:
    """Why the process at the other end (SO_PEERCRED, `pidfd` from caller_pidfd) may not
    use this worker, or ""."""
    if uid != os.geteuid():
        return f"uid {uid} may not use a worker of uid {os.geteuid()}"
    if pid == 0:
        return "caller is in another pid namespace"
    if pidfd is None:
        return "cannot hold on to the caller (it is gone, or no pidfd could be opened)"
    own_user_namespace, own_privileges = _own_identity()
    try:
        if os.readlink(f"/proc/{pid}/ns/user") != own_user_namespace:
            return "caller is in another user namespace"
        theirs = _privileges(str(pid))
        if theirs != own_privileges:
            differing = sorted({line.split(b":")[0].decode() for line in theirs ^ own_privileges})
            return f"caller has other capabilities or confinement ({', '.join(differing)})"
    except OSError as exc:
        return f"cannot inspect the caller: {exc.strerror}"
    try:
        signal.pidfd_send_signal(pidfd, 0)  # still there: /proc/<pid> above was the caller
    except OSError:
        return "caller exited before it could be checked"
    return ""


@functools.cache
def _own_identity() -> tuple[str, frozenset[bytes]]:
    """Our user namespace and privileges: they do not change while we serve."""
    return os.readlink("/proc/self/ns/user"), _privileges("self")


# Lines of /proc/<pid>/status that limit what a process and what it execs may do: all
# capability sets (the bounding and ambient sets decide what an exec'd iptables gets),
# no_new_privs and seccomp (a sandboxed service's SystemCallFilter, a runtime's profile).
_PRIVILEGE_LINES = (b"Cap", b"NoNewPrivs:", b"Seccomp:", b"Seccomp_filters:")


def _privileges(pid: str) -> frozenset[bytes]:
    """Those lines of /proc/<pid>/status, read raw: a text-mode file costs ten times more."""
    fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
    try:
        status = os.read(fd, 65536)
    finally:
        os.close(fd)
    return frozenset(line for line in status.split(b"\n") if line.startswith(_PRIVILEGE_LINES))


def key_refusal(ours: bytes, theirs: bytes) -> str:
    """Keys are `version|installation|package directory` (identity.request_key)."""
    if theirs == ours:
        return ""
    if theirs.rsplit(b"|", 1)[0] == ours.rsplit(b"|", 1)[0]:
        return STALE_CODE  # the caller imports another package directory
    return "the worker belongs to another version or installation"


def plugin_refusal(plugin: str) -> str:
    from cni_rkt.protocol.runner import PLUGIN_MODULES

    return "" if plugin in PLUGIN_MODULES else f"unknown plugin {plugin!r}"
