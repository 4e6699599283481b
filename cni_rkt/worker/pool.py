"""The worker's children: forked ahead of time, each serving requests one at a time.

Forking the pre-loaded worker costs milliseconds (page tables), and so does a child's
exit, so neither sits on a request's path: spare children are forked while the worker
waits, and a request is handed to one over its control socket together with the caller's
connection. The child takes on the caller's context while the caller confirms, runs the
request on the caller's "go", and writes the reply straight to the caller; the worker
only follows along (CHILD_* messages) to act if the child dies.

A child then puts its own context back (request.OwnContext: namespaces, root, cwd,
stderr, umask, group, environment) and tells the worker it is ready for another caller. A fresh
child pays for its first request: copy-on-write faults on the worker's pages, then its
exit; measured on the project's machine, that was 15-20 ms of CPU against 5 ms for a
bridge ADD in a warm process. A child serves no one else, and exits, when the request
could leave something behind: it was interrupted, it left a thread or an open fd (which
could hold a caller's namespace), or putting the context back failed; and after
MAX_REQUESTS_PER_CHILD, so that what requests leave in memory does not accumulate.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

from cni_rkt.worker import wire

# What a child tells the worker about a request it was handed with the caller's connection.
CHILD_NO_GO = b"no-go"  # the caller did not confirm (it runs in-process): nothing ran
CHILD_RUNNING = b"running"  # confirmed: from here on the request may have changed things
CHILD_REPLYING = b"replying"  # about to write the reply to the caller
CHILD_READY = b"ready"  # back in its own context: it may be handed another request
# A child handed a request without the connection (the DEL undoing a lost ADD) sends
# [b"result", exit code, stdout] to the worker instead.
RESULT = b"result"
CONFIRM_TIMEOUT = 5.0  # seconds a child waits for the caller's "go"
MAX_REQUESTS_PER_CHILD = 100
RESTORE_ATTEMPTS = 10


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
    """Fork a spare child that waits for requests; `inherited_fds` are closed in it.

    A spare forked ahead of time rehearses while it waits (warmup.rehearse).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = os.fork()
    except OSError:  # out of processes or memory: the caller decides what that means
        ours.close()
        theirs.close()
        raise
    if pid == 0:
        status = 1
        try:
            ours.close()
            for fd in inherited_fds:
                _close_quietly(fd)
            status = _serve(theirs, rehearse)
        finally:
            os._exit(status)
    theirs.close()
    return Child(pid, ours)


def _serve(control: socket.socket, rehearse: bool) -> int:
    from cni_rkt.worker.control import CHILD_NAME, name_this_process
    from cni_rkt.worker.request import OwnContext
    from cni_rkt.worker.warmup import own_memory
    from cni_rkt.worker.warmup import rehearse as warm_up

    name_this_process(CHILD_NAME)
    signal.set_wakeup_fd(-1)  # the worker's; closed in this child
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until a request runs: nothing to undo
    gc.disable()  # collected between requests, off their path
    if rehearse:
        warm_up()
        own_memory()
    own = OwnContext.save()
    for served in range(1, MAX_REQUESTS_PER_CHILD + 1):
        open_before = _open_fds()
        reusable = _serve_one(control)
        if not _finish_after_reply(own) or not reusable or not _restore(own):
            return 0
        gc.collect()  # before the check: a cycle may hold an fd its collection closes
        if threading.active_count() > 1 or _open_fds() != open_before:
            return 0
        if served == MAX_REQUESTS_PER_CHILD:
            return 0  # exit without offering itself: the worker must not hand it another
        _tell(control, CHILD_READY)
    return 0


def _restore(own) -> bool:
    """Put our own context back; whether that worked. A thread the request joined may not
    have left the kernel yet, and entering a mount namespace refuses (EINVAL) while it
    shares our filesystem state: try again a few times, briefly."""
    for attempt in range(RESTORE_ATTEMPTS):
        try:
            own.restore()
            return True
        except OSError as exc:
            if exc.errno != errno.EINVAL or attempt == RESTORE_ATTEMPTS - 1:
                return False
            time.sleep(0.001 * (attempt + 1))
    return False


def _serve_one(control: socket.socket) -> bool:
    """Wait for one request and serve it; whether this process may serve another."""
    from cni_rkt.worker.request import Interrupted, parse_handoff, take_on_caller

    try:
        fields, fds = wire.receive_frame_with_fds(control, wire.MAX_HANDOFF_FDS)
        request, conn = parse_handoff(fields, fds)
    except (OSError, ValueError, wire.ProtocolError):
        return False  # the worker retired or died before handing us a request
    try:
        serve = take_on_caller(request)  # while the caller confirms
        if conn is None:  # the DEL undoing a lost ADD: its result goes to the worker
            stdout, code = serve()
            control.sendall(wire.encode_fields([RESULT, str(code).encode(), stdout]))
            return False
        if not _confirmed(conn):
            _tell(control, CHILD_NO_GO)
            return True
        _tell(control, CHILD_RUNNING)
        stdout, code = serve()
        _tell(control, CHILD_REPLYING)
        conn.sendall(wire.encode_fields([RESULT, str(code).encode(), stdout]))
        return not Interrupted.seen
    finally:
        close_all(request.fds.values())
        if conn is not None:
            conn.close()


def _finish_after_reply(own) -> bool:
    """What the request left to finish once its caller had the reply (background.py);
    whether that went well (if not, this process serves no one else). The caller's stderr
    is let go of first: its runtime reads it to the end before it goes on."""
    from cni_rkt.background import finish_what_waited_for_the_reply

    try:
        os.dup2(own.stderr, 2)
        finish_what_waited_for_the_reply()
        return True
    except BaseException as exc:  # noqa: BLE001 - the reply is sent; a fresh child serves the next caller
        sys.stderr.write(f"cni-rkt worker: finishing after the reply failed: {exc!r}\n")  # our own stderr again
        return False


def _open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


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
