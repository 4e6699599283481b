"""Kernel settings under /proc/sys, for the network namespace we are in.

/proc/sys/net shows the namespace of the task that opens the file, so a pod's settings
are written from inside `netns.entered(pod)` (the opened file keeps its namespace).
Names use slashes as the reference does: "net/ipv6/conf/eth0/accept_dad".
"""

from __future__ import annotations

import os

from cni_rkt.errors import CNIError, ErrorCode

_ROOT = "/proc/sys"


def read_sysctl(name: str) -> str | None:
    """The value, or None when the setting does not exist here (no IPv6, no such link)."""
    try:
        with open(os.path.join(_ROOT, name)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def write_sysctl(name: str, value: str) -> None:
    try:
        with open(os.path.join(_ROOT, name), "w") as f:
            f.write(value)
    except OSError as exc:
        raise CNIError(ErrorCode.INTERNAL, f"failed to set sysctl {name}={value}: {exc.strerror}") from exc


def try_write_sysctl(name: str, value: str) -> bool:
    """Best effort, as the reference does for per-link tweaks; True when written."""
    try:
        write_sysctl(name, value)
    except CNIError:
        return False
    return True


def ensure_sysctl(name: str, value: str) -> str | None:
    """Set `name` only when it differs; return the old value if we changed it, else None."""
    current = read_sysctl(name)
    if current == value:
        return None
    if current is None:
        raise CNIError(ErrorCode.INTERNAL, f"failed to set sysctl {name}={value}: no such setting")
    write_sysctl(name, value)
    return current


def forwarding_sysctl(family: int) -> str:
    return "net/ipv4/ip_forward" if family == 4 else "net/ipv6/conf/all/forwarding"
