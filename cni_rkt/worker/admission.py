"""Who a worker serves, and the reason it gives anyone else (who then runs in-process).

A caller is served when it has the worker's own uid, is in the same user namespace, has the
same effective capabilities (so a request never runs with more privilege than its caller
would have), and its request key names this version, installation and code on disk.
"""

from __future__ import annotations

import functools
import os

STALE = "stale"
STALE_CODE = f"{STALE}: the code changed since this worker started"


def peer_refusal(pid: int, uid: int) -> str:
    """Why the process at the other end (SO_PEERCRED) may not use this worker, or ""."""
    if uid != os.geteuid():
        return f"uid {uid} may not use a worker of uid {os.geteuid()}"
    if pid == 0:
        return "caller is in another pid namespace"
    own_user_namespace, own_capabilities = _own_identity()
    try:
        if os.readlink(f"/proc/{pid}/ns/user") != own_user_namespace:
            return "caller is in another user namespace"
        if _effective_capabilities(str(pid)) != own_capabilities:
            return "caller has other capabilities"
    except OSError as exc:
        return f"cannot inspect the caller: {exc.strerror}"
    return ""


@functools.cache
def _own_identity() -> tuple[str, bytes]:
    """Our user namespace and capabilities: they do not change while we serve."""
    return os.readlink("/proc/self/ns/user"), _effective_capabilities("self")


def _effective_capabilities(pid: str) -> bytes:
    """The CapEff line of /proc/<pid>/status, read raw: a text-mode file costs ten times more."""
    fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
    try:
        status = os.read(fd, 65536)
    finally:
        os.close(fd)
    start = status.find(b"\nCapEff:")
    return status[start + 1 : status.find(b"\n", start + 1)] if start >= 0 else b""


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
