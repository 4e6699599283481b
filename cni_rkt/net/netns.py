"""Network namespaces by path: open one, step into it for a moment, always step back.

Runtimes pass CNI_NETNS in several forms (/var/run/netns/X, /run/netns/X,
/proc/PID/ns/net, /proc/PID/fd/N); all of them open to the same kind of nsfs file, so
one `open_netns` serves them all. A namespace that is gone is a value (`None`) for DEL
and an error for ADD and CHECK.

`entered(ns)` switches the calling thread with setns(2) and switches back in `finally`.
Plugins are single-threaded, and a netlink socket or /proc/sys file opened inside stays
bound to that namespace after we leave, so one short visit per namespace is enough.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode

CLONE_NEWNET = 0x40000000
_NS_GET_NSTYPE = 0xB703  # ioctl on an nsfs file: which kind of namespace it is
_OWN_NETNS = "/proc/thread-self/ns/net"
_libc = None


@dataclass(frozen=True, slots=True)
class NetNS:
    """An open network namespace; `fd` keeps it alive while we use it."""

    path: str
    fd: int

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class NetnsMissing(Exception):
    """The path names no network namespace (any more)."""


def setns(fd: int, nstype: int) -> None:
    """setns(2), which Python 3.11's os lacks; the one wrapper (the worker enters with it too).

    Raises OSError(errno, "setns: <reason>").
    """
    global _libc
    if _libc is None:
        # The process's own symbols: find_library would import ctypes.util and fork
        # ldconfig to name the libc we are already linked to.
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _open(path: str) -> NetNS:
    """Open `path` as a netns or raise NetnsMissing / OSError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise NetnsMissing("no such file or directory") from exc
    try:
        kind = fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError as exc:
        os.close(fd)
        # ENOTTY: a plain file, e.g. the mount point left after a reboot
        raise NetnsMissing("not a network namespace") from exc
    if kind != CLONE_NEWNET:
        os.close(fd)
        raise NetnsMissing("not a network namespace")
    return NetNS(path, fd)


def open_netns(path: str) -> NetNS:
    """The netns at CNI_NETNS; a missing one is an error naming the variable."""
    try:
        return _open(path)
    except NetnsMissing as exc:
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT, f'failed to open netns "{path}": {exc}', "CNI_NETNS") from exc
    except OSError as exc:
        raise CNIError(ErrorCode.INTERNAL, f'failed to open netns "{path}": {exc.strerror}', "CNI_NETNS") from exc


def open_netns_if_present(path: str) -> NetNS | None:
    """For DEL: an empty CNI_NETNS or a namespace that is gone gives None."""
    if not path:
        return None
    try:
        return _open(path)
    except NetnsMissing:
        return None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):  # /proc/PID of a process that exited
            return None
        raise CNIError(ErrorCode.INTERNAL, f'failed to open netns "{path}": {exc.strerror}', "CNI_NETNS") from exc


@contextlib.contextmanager
def entered(ns: NetNS) -> Iterator[None]:
    """Run the block inside `ns`, then return to where we were, whatever happens."""
    home = os.open(_OWN_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            setns(ns.fd, CLONE_NEWNET)
        except OSError as exc:
            reason = os.strerror(exc.errno)
            raise CNIError(ErrorCode.INTERNAL, f'failed to enter netns "{ns.path}": {reason}') from exc
        try:
            yield
        finally:
            try:
                setns(home, CLONE_NEWNET)
            except OSError as exc:  # staying in the pod's namespace would be far worse than dying
                os.write(2, f"cni-rkt: cannot return to own netns: {exc}\n".encode())
                os._exit(70)
    finally:
        os.close(home)
