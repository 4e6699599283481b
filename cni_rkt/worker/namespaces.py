"""Enter another process's namespaces by fd, through net/netns.py's setns wrapper."""

from __future__ import annotations

import ctypes
import os

from cni_rkt.net.netns import CLONE_NEWNET, setns

CLONE_NEWNS = 0x00020000

_libc = ctypes.CDLL(None, use_errno=True)  # for unshare(2)


def same_namespace(fd: int, kind: str) -> bool:
    """Whether `fd` (an open /proc/<pid>/ns/<kind>) is the namespace we are in already."""
    theirs = os.fstat(fd)
    ours = os.stat(f"/proc/self/ns/{kind}")
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def enter(fd: int, kind: str) -> None:
    """Move this (single-threaded) process into the namespace `fd`, if not there already."""
    if same_namespace(fd, kind):
        return
    setns(fd, {"net": CLONE_NEWNET, "mnt": CLONE_NEWNS}[kind])
    if not same_namespace(fd, kind):
        raise OSError(f"still outside the caller's {kind} namespace after setns")


def leave_caller_namespaces() -> None:
    """Put a root worker where it keeps no caller's namespace alive and can harm none.

    The worker never acts in its own namespaces (each request enters its caller's), so it
    prefers pid 1's. Where /proc/1/ns is closed to us (a sandboxed machine), it takes a
    fresh, empty network namespace instead: a request that failed to enter its caller's
    would then find nothing to change. The mount namespace stays the spawner's then, and
    with it whatever that pins (`ip netns exec` remounts /sys for its netns).
    """
    try:
        for kind in ("net", "mnt"):
            fd = os.open(f"/proc/1/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                enter(fd, kind)
            finally:
                os.close(fd)
    except OSError:
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare: {os.strerror(err)}") from None
    os.chdir("/")
