"""One request inside the worker's forked child: become the caller, then run the plugin.

The child enters the caller's network and mount namespaces, takes its root directory (a
chrooted caller's), cwd, stderr, umask, group and environment, and calls `runner.run`:
what the launcher would have done itself. If it cannot become the caller it runs nothing
and reports why. Afterwards `OwnContext` puts back the child's own, so that it can serve
another caller (see pool.py).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from cni_rkt.background import allow_finishing_after_reply
from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.protocol.runner import config_version_hint, error_reply, run
from cni_rkt.worker import namespaces, wire


@dataclass(slots=True)
class Request:
    key: bytes
    plugin: str
    umask: int
    environ: dict[str, str]
    stdin: bytes
    fds: dict[str, int]  # wire.FD_NAMES -> fd received from the caller
    uid: int
    gid: int

    @property
    def command(self) -> str:
        return self.environ.get("CNI_COMMAND", "")


REPLY_TO_CALLER, REPLY_TO_WORKER = b"caller", b"worker"


def handoff_fields(request: Request, reply_to: bytes) -> list[bytes]:
    """What the worker sends the child that will serve `request`.

    With it go request.fds and, when the child replies to the caller itself
    (REPLY_TO_CALLER), the caller's connection as one more fd.
    """
    return [
        wire.PROTOCOL, request.key, request.plugin.encode(), str(request.umask).encode(),
        wire.encode_environ(request.environ), request.stdin, str(request.uid).encode(), str(request.gid).encode(),
        reply_to,
    ]


def parse_handoff(fields: list[bytes], fds: list[int]) -> tuple[Request, socket.socket | None]:
    """The request and, when the child is to reply to the caller, the caller's connection."""
    if len(fields) != 9 or fields[8] not in (REPLY_TO_CALLER, REPLY_TO_WORKER):
        raise wire.ProtocolError("not a hand-off")
    conn = None
    if fields[8] == REPLY_TO_CALLER:
        if len(fds) != len(wire.FD_NAMES) + 1:
            raise wire.ProtocolError("a hand-off to reply to the caller without the caller's connection")
        conn = socket.socket(fileno=fds.pop())
    return parse_request(fields[:6], fds, int(fields[6]), int(fields[7])), conn


def parse_request(fields: list[bytes], fds: list[int], uid: int, gid: int) -> Request:
    if len(fields) != 6 or fields[0] != wire.PROTOCOL:
        raise wire.ProtocolError("not a request of this protocol version")
    if len(fds) != len(wire.FD_NAMES):
        raise wire.ProtocolError(f"expected {len(wire.FD_NAMES)} fds, got {len(fds)}")
    _protocol, key, plugin, umask, environ, stdin = fields
    return Request(
        key=key,
        plugin=plugin.decode(),
        umask=int(umask),
        environ=wire.decode_environ(environ),
        stdin=stdin,
        fds=dict(zip(wire.FD_NAMES, fds)),
        uid=uid,
        gid=gid,
    )


class Interrupted:
    """Whether SIGTERM interrupted a request in this process (it then serves no other)."""

    seen = False


def _raise_on_sigterm(signum, _frame) -> None:
    # SystemExit unwinds the verb's undo stack, as the request is interrupted.
    Interrupted.seen = True
    raise SystemExit(128 + signum)


@dataclass(slots=True)
class OwnContext:
    """What become_caller changes, as it was before: to go back to after a request."""

    netns: int
    mntns: int
    root: int
    cwd: int
    stderr: int
    umask: int
    gid: int
    environ: dict[str, str]

    @classmethod
    def save(cls) -> OwnContext:
        umask = os.umask(0o022)
        os.umask(umask)
        flags = os.O_RDONLY | os.O_CLOEXEC
        return cls(
            netns=os.open("/proc/self/ns/net", flags),
            mntns=os.open("/proc/self/ns/mnt", flags),
            root=os.open("/", flags | os.O_DIRECTORY),
            cwd=os.open(".", flags | os.O_DIRECTORY),
            stderr=os.dup(2),
            umask=umask,
            gid=os.getegid(),
            environ=dict(os.environ),
        )

    def restore(self) -> None:
        """Back to our own namespaces, root, cwd, stderr, umask, group and environment
        (OSError if that fails: the process must then serve no one else)."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        change_root(self.root)  # first: enter() looks at /proc, which the caller's root may lack
        namespaces.enter(self.mntns, "mnt")
        namespaces.enter(self.netns, "net")
        change_root(self.root)  # entering another mount namespace moved us to its root
        os.fchdir(self.cwd)
        os.dup2(self.stderr, 2)
        os.umask(self.umask)
        if os.getegid() != self.gid:
            os.setgid(self.gid)
        os.environ.clear()
        os.environ.update(self.environ)


def change_root(directory: int) -> None:
    """Make the directory open as `directory` our root, unless it is already (a chroot
    needs CAP_SYS_CHROOT: a caller outside a chroot costs nothing and needs nothing)."""
    theirs, ours = os.fstat(directory), os.stat("/")
    if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino):
        os.fchdir(directory)
        os.chroot(".")


def become_caller(request: Request) -> None:
    namespaces.enter(request.fds["netns"], "net")
    namespaces.enter(request.fds["mntns"], "mnt")
    change_root(request.fds["root"])  # after the mount namespace, whose root setns gave us
    os.fchdir(request.fds["cwd"])
    os.dup2(request.fds["stderr"], 2)
    os.umask(request.umask)
    if request.gid != os.getegid():
        os.setgid(request.gid)  # the server admits only its own uid, so only the group may differ
    os.environ.clear()
    os.environ.update(request.environ)


def take_on_caller(request: Request) -> Callable[[], tuple[bytes, int]]:
    """Become the caller now; return what runs the request as the caller would have
    (or, if this process could not become the caller, returns why, running nothing)."""
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        become_caller(request)
    except OSError as exc:
        error = CNIError(ErrorCode.INTERNAL, f"cni-rkt worker could not take on the caller's context: {exc}")
        reply = error_reply(error, config_version_hint(request.stdin)), 1
        return lambda: reply
    return lambda: _run(request)


def _run(request: Request) -> tuple[bytes, int]:
    allow_finishing_after_reply()  # the child replies, then finishes (pool.py)
    try:
        return run(request.plugin, dict(os.environ), request.stdin)
    except BaseException as exc:  # noqa: BLE001 - SIGTERM's SystemExit, after the undo ran
        error = CNIError(ErrorCode.INTERNAL, f"{request.plugin} interrupted during {request.command}: {exc!r}")
        return error_reply(error, config_version_hint(request.stdin)), 1
    finally:
        sys.stderr.flush()
