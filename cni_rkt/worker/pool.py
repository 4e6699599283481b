"""The worker's children: forked ahead of time, one request each, then gone.

Forking the pre-loaded worker costs milliseconds (page tables of some 35 MiB), and so
does a child's exit, so neither sits on a request's path: spare children are forked
while the worker waits, and a request is handed to one over its control socket together
with the caller's connection. The child takes on the caller's context while the caller
confirms, runs the request on the caller's "go", and writes the reply straight to the
caller; the worker only follows along (CHILD_* messages) to act if the child dies.

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

# What a child tells the worker about a request it was handed with the caller's connection.
CHILD_NO_GO = b"no-go"  # the caller did not confirm (it runs in-process): nothing ran
CHILD_RUNNING = b"running"  # confirmed: from here on the request may have changed things
CHILD_REPLYING = b"replying"  # about to write the reply to the caller
# A child handed a request without the connection (the DEL undoing a lost ADD) sends
# [b"result", exit code, stdout] to the worker instead.
RESULT = b"result"
CONFIRM_TIMEOUT = 5.0  # seconds a child waits for the caller's "go"


@dataclass(slots=True, eq=False)
class Child:
    pid: int
    control: socket.socket  # the worker's end of the socketpair to this child
    request: object = None  # request.Request once handed one
    conn: socket.socket | None = None  # the caller's connection: the worker keeps a copy to report a lost child
    output: bytearray = field(default_factory=bytearray)
    state: bytes = b""  # the last CHILD_* message, or RESULT
    undoing: str = ""  # on the DEL child that undoes a lost ADD: what happened to the ADD

    def messages(self) -> list[list[bytes]]:
        """The complete frames received so far (taken out of `output`)."""
        frames = []
        while len(self.output) >= 4:
            size = wire.frame_length(self.output)
            if len(self.output) < 4 + size:
                break
            frames.append(wire.decode_fields(bytes(self.output[4 : 4 + size])))
            del self.output[: 4 + size]
        return frames


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
    from cni_rkt.worker.request import parse_handoff, take_on_caller
    from cni_rkt.worker.warmup import own_memory
    from cni_rkt.worker.warmup import rehearse as warm_up

    signal.set_wakeup_fd(-1)  # the worker's; closed in this child
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until a request runs: nothing to undo
    gc.disable()  # one short request: collecting would only copy the worker's shared pages
    if rehearse:
        warm_up()
        own_memory()
    try:
        fields, fds = wire.receive_frame_with_fds(control, wire.MAX_HANDOFF_FDS)
        request, conn = parse_handoff(fields, fds)
    except (OSError, ValueError, wire.ProtocolError):
        return 0  # the worker retired or died before handing us a request
    serve = take_on_caller(request)  # while the caller confirms
    if conn is None:
        stdout, code = serve()
        control.sendall(wire.encode_fields([RESULT, str(code).encode(), stdout]))
        return 0
    if not _confirmed(conn):
        _tell(control, CHILD_NO_GO)
        return 0
    _tell(control, CHILD_RUNNING)
    stdout, code = serve()
    _tell(control, CHILD_REPLYING)
    conn.sendall(wire.encode_fields([RESULT, str(code).encode(), stdout]))
    return 0


def _tell(control: socket.socket, message: bytes) -> None:
    """Keep the worker informed; if it is gone, the request still runs and gets its reply."""
    try:
        control.sendall(wire.encode_fields([message]))
    except OSError:
        pass


def _confirmed(conn: socket.socket) -> bool:
    conn.settimeout(CONFIRM_TIMEOUT)
    try:
        return wire.read_frame(conn) == [b"go"]
    except (OSError, wire.ProtocolError):
        return False


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def close_all(fds) -> None:
    for fd in fds:
        _close_quietly(fd)
