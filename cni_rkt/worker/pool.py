"""The worker's children: forked ahead of time, one request each, then gone.

Forking the pre-loaded worker costs milliseconds (page tables of some 35 MiB), and so
does a child's exit, so neither sits on a request's path: spare children are forked
while the worker waits, a request is handed to one over its control socket, and the
reply is relayed to the caller as soon as it is complete, before the child has exited.

A child serves exactly one request, so no state (namespaces, environment, cwd, imported
module state a plugin changed) ever carries over from one caller to the next.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
from dataclasses import dataclass, field

from cni_rkt.worker import wire


@dataclass(slots=True, eq=False)
class Child:
    pid: int
    control: socket.socket  # the worker's end of the socketpair to this child
    request: object = None  # request.Request once handed one
    conn: socket.socket | None = None  # the caller's connection, to relay the reply to
    output: bytearray = field(default_factory=bytearray)
    replied: bool = False
    undoing: str = ""  # on the DEL child that undoes a lost ADD: what happened to the ADD

    def complete_reply(self) -> list[bytes] | None:
        """The child's result frame once all of it has arrived, else None."""
        if len(self.output) < 4:
            return None
        try:
            size = wire.frame_length(self.output)
            if len(self.output) < 4 + size:
                return None
            fields = wire.decode_fields(bytes(self.output[4 : 4 + size]))
        except wire.ProtocolError:
            return None
        return fields if len(fields) == 3 and fields[0] == b"result" else None


def fork_child(inherited_fds: list[int], rehearse: bool = True) -> Child:
    """Fork a spare child that waits for one request; `inherited_fds` are closed in it.

    A spare forked ahead of time rehearses while it waits (warmup.rehearse).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            ours.close()
            for fd in inherited_fds:
                _close_quietly(fd)
            status = _serve_one(theirs, rehearse)
        finally:
            os._exit(status)
    theirs.close()
    return Child(pid, ours)


def _serve_one(control: socket.socket, rehearse: bool) -> int:
    from cni_rkt.worker.request import parse_handoff, serve
    from cni_rkt.worker.warmup import own_memory
    from cni_rkt.worker.warmup import rehearse as warm_up

    signal.set_wakeup_fd(-1)  # the worker's; closed in this child
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until a request runs: nothing to undo
    gc.disable()  # one short request: collecting would only copy the worker's shared pages
    if rehearse:
        warm_up()
        own_memory()
    try:
        fields, fds = wire.receive_frame_with_fds(control)
    except (OSError, wire.ProtocolError):
        return 0  # the worker retired or died before handing us a request
    stdout, code = serve(parse_handoff(fields, fds))
    control.sendall(wire.encode_fields([b"result", str(code).encode(), stdout]))
    return 0


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def close_all(fds) -> None:
    for fd in fds:
        _close_quietly(fd)
