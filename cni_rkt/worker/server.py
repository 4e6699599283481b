"""The worker process: import everything once, then hand each request to one of its children.

Life cycle: leave the spawner's namespaces (root only, see namespaces.py), watch the code
on disk (codewatch.py), take the lock beside the socket (one worker per socket), import the
plugins, listen, serve (pool.py: pre-forked children, each serving one caller at a time),
and exit after `idle` seconds without a request, or as soon as the code on disk changed.
After a tenth of `idle` without a request it rests: it lets its children go and keeps only
itself (less than half the memory), so that a node with a pod now and then is served by a
child forked for the request (5-15 ms slower than a spare) instead of the launcher's
in-process start (0.1-0.3 s). Both times run from the last activity: a request, a refused
caller or a child's message. A request ends the rest; spares are forked again behind it.

Who is served is admission.py's call; anyone refused runs in-process. So is a caller when
no child can be had (the system refuses the fork): that is known before "accepted".

Once it said "accepted", the worker hands the caller's connection to the child, which
replies itself (pool.py); the worker follows the child's progress on its control socket.
If the child dies after the caller's "go" and before its reply, the caller gets an error
from the worker (lost.py); if it was an ADD, the worker first runs DEL for it, so a lost
ADD leaves no half-configured pod.
"""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import socket
import stat
import sys
import time
from dataclasses import replace

from cni_rkt import __version__
from cni_rkt.worker import admission, control, identity, lost, namespaces, warmup, wire
from cni_rkt.worker.codewatch import CodeWatch, interpreter_paths
from cni_rkt.worker.pool import CHILD_NO_GO, CHILD_READY, CHILD_REPLYING, CHILD_RUNNING, RESULT, Child, close_all, fork_child
from cni_rkt.worker.request import REPLY_TO_CALLER, REPLY_TO_WORKER, handoff_fields, parse_request

MAX_IDLE_CHILDREN = 4  # served children kept for the next callers (as many as parallel runtimes)
LOCK_WAIT_SECONDS = 3.0  # a retiring worker releases the lock at once; wait a little for it
REQUEST_READ_TIMEOUT = 2.0  # for the whole request: less than the client's ACCEPT_TIMEOUT, so a
# caller stalled mid-request delays the next callers but does not make them give up
LONGEST_WAIT = 3600.0  # epoll takes no timeout beyond 24 days (CNI_RKT_WORKER_IDLE may be inf)
SPARE_CHILDREN = 2  # forked ahead of requests; more would only hold memory on 2 cores


def main(path: str, idle: float, roots: list[str]) -> None:
    control.name_this_process(control.WORKER_NAME)
    if os.geteuid() == 0:
        namespaces.leave_caller_namespaces()
    package_dir = os.path.dirname(sys.modules["cni_rkt"].__file__)
    stdlib, interpreter = interpreter_paths(roots)
    code = CodeWatch(package_dir, [*roots, *stdlib], interpreter)  # before the plugins are imported
    key = identity.request_key(__version__, identity.install_id(sys.executable, roots), identity.tree_id(package_dir))
    lock = take_lock(path)
    if lock is None:
        return
    with open(path + ".pid", "w") as f:  # early: whoever started us can find us while we load
        f.write(f"{os.getpid()}\n")
    warmup.preload()
    warmup.rehearse()
    warmup.freeze()
    Worker(path, key, lock, idle, code).serve_forever()


def take_lock(path: str) -> int | None:
    """The lock that makes this the only worker on `path`; None if another holds it."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if not _private(directory):
        return None  # anyone could stand in for the worker, or make it write elsewhere
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def _private(directory: str) -> bool:
    """A directory of ours (not a symlink) closed to others, on a way no one else can
    change: whoever may rename entries of a directory above it could swap it for theirs
    after this check, and have the pid file, lock and socket written where they like."""
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        return False
    above = {*_ancestors(os.path.abspath(directory)), *_ancestors(os.path.realpath(directory))}
    return all(_guarded(os.stat(d)) for d in above)  # (a symlink on the way: its target, stat follows it)


def _ancestors(path: str) -> list[str]:
    found = []
    while (parent := os.path.dirname(path)) != path:
        found.append(parent)
        path = parent
    return found


def _guarded(info: os.stat_result) -> bool:
    """Only root and we may rename its entries (in a sticky one like /tmp, others only theirs)."""
    open_to_others = info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX
    return info.st_uid in (0, os.geteuid()) and not open_to_others


def _send(conn: socket.socket, *fields: bytes) -> None:
    conn.sendall(wire.encode_fields(list(fields)))


class Worker:
    """The accept loop: admit a caller, hand its request and connection to a spare child,
    follow the child until it replied, and speak for it if it died."""

    def __init__(self, path: str, key: bytes, lock: int, idle: float, code: CodeWatch,
                 spares: int = SPARE_CHILDREN) -> None:
        self.path = path
        self.key = key
        self.code = code
        self.lock = lock
        self.idle = idle
        self.rest_after = idle * identity.REST_FRACTION
        self.resting = False  # children let go for want of requests; none is forked until the next
        self.spare_target = spares
        self.spares: list[Child] = []
        self.busy: list[Child] = []
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        # SIGTERM only sets a flag and wakes the loop: an exception raised from a handler
        # can land in os.fork()'s at-fork hooks, where Python ignores it.
        self.wakeup_read, self.wakeup_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(self.wakeup_read, selectors.EVENT_READ)
        if code.fileno() is not None:  # retire as soon as the code changes, not at the next request
            self.selector.register(code.fileno(), selectors.EVENT_READ)
        self.listener = self._listen()
        self.last_activity = time.monotonic()

    def _listen(self) -> socket.socket:
        try:
            os.unlink(self.path)  # a dead worker's socket; we hold the lock
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o600)
        listener.listen(128)
        listener.setblocking(False)
        self.socket_inode = os.stat(self.path).st_ino
        self.selector.register(listener, selectors.EVENT_READ)
        return listener

    def serve_forever(self) -> None:
        signal.set_wakeup_fd(self.wakeup_write)
        signal.signal(signal.SIGTERM, self._stop)
        try:
            while self.listener is not None or self.busy:
                events = self.selector.select(self._timeout())
                for selected, _mask in events:
                    if selected.fileobj is self.listener:
                        self._accept()
                    elif selected.fileobj == self.wakeup_read:
                        _drain(self.wakeup_read)
                    elif selected.fileobj == self.code.fileno():
                        self._retire_if_code_changed()
                    elif selected.data in self.busy or selected.data in self.spares:
                        self._collect(selected.data)  # (not a child an earlier event in this batch let go)
                if self.stopping:
                    self.retire()  # busy children still finish and reply
                if self.busy or events:
                    self.last_activity = time.monotonic()
                elif self.listener is not None:
                    quiet = time.monotonic() - self.last_activity
                    if quiet >= self.idle:
                        self.retire()
                    elif quiet >= self.rest_after and (self.spares or not self.resting):
                        self._rest()  # (also lets go of spares kept since a fork failed)
                if self._wants_spare() and not self.selector.select(0):
                    try:
                        self._add_spare(rehearse=not self.busy)  # under load, rehearsing costs more CPU than it saves
                    except OSError:  # out of processes or memory: no spares until a caller comes
                        self.resting = True
        finally:
            self.retire()

    def _stop(self, _signum, _frame) -> None:
        self.stopping = True

    def _wants_spare(self) -> bool:
        """Fork while no child is busy, and whenever no spare is left: children reply to
        their callers themselves, so a fork delays no reply, only the next accept."""
        return (self.listener is not None and not self.resting and len(self.spares) < self.spare_target
                and not (self.busy and self.spares))

    def _timeout(self) -> float | None:
        if self._wants_spare():
            return 0.0
        if self.busy:
            return None
        until = self.idle if self.resting else self.rest_after
        return min(LONGEST_WAIT, max(0.0, until - (time.monotonic() - self.last_activity)))

    def _rest(self) -> None:
        """No request for a while: let the spare children go (each holds about 14 MiB of its
        own, the worker 20 MiB) and fork none until a caller comes."""
        self.resting = True
        self._let_spares_go()

    def retire(self) -> None:
        """Stop taking requests and give up the socket at once; running ones still finish."""
        if self.listener is None:
            return
        self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        for name, mine in ((self.path, None), (self.path + ".pid", True)):
            try:
                if mine or os.stat(name).st_ino == self.socket_inode:
                    os.unlink(name)
            except FileNotFoundError:
                pass
        os.close(self.lock)
        if self.code.fileno() is not None:
            self.selector.unregister(self.code.fileno())
        self.code.close()
        self._let_spares_go()

    def _let_spares_go(self) -> None:
        for spare in self.spares:  # a spare exits when its control socket closes
            self._drop(spare)
            os.waitpid(spare.pid, 0)
        self.spares.clear()

    def _inherited_fds(self, waiting: list[int] = ()) -> list[int]:
        """What a new child must close: everything the worker holds for itself and others,
        with `waiting`, the fds of a request not yet handed to a child. A child left holding
        a caller's stderr or connection would keep that caller's output open as long as it
        lives, and children serve many callers."""
        fds = [*waiting, self.lock, self.selector.fileno(), self.wakeup_read, self.wakeup_write]
        if self.code.fileno() is not None:
            fds.append(self.code.fileno())
        if self.listener is not None:
            fds.append(self.listener.fileno())
        for child in (*self.spares, *self.busy):
            fds.append(child.control.fileno())
            if child.conn is not None:
                fds.append(child.conn.fileno())
                fds.extend(child.request.fds.values())
        return fds

    def _add_spare(self, rehearse: bool = True, waiting: list[int] = ()) -> None:
        child = fork_child(self._inherited_fds(waiting), rehearse)
        self.spares.append(child)
        self.selector.register(child.control, selectors.EVENT_READ, child)

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        deadline = time.monotonic() + REQUEST_READ_TIMEOUT
        fds: list[int] = []
        pidfd = None
        try:
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            pid, uid, gid = (int.from_bytes(creds[i : i + 4], sys.byteorder) for i in (0, 4, 8))
            pidfd = admission.caller_pidfd(conn, pid)
            fields, fds = wire.receive_frame_with_fds(conn, deadline=deadline)
            conn.settimeout(REQUEST_READ_TIMEOUT)  # for our answer, not what was left of the read
            reason = admission.peer_refusal(pid, uid, pidfd)
            request = None if reason else parse_request(fields, fds, uid, gid)
            reason = reason or self._key_refusal(request.key) or admission.plugin_refusal(request.plugin)
            reason = reason or self._no_child_refusal([*fds, conn.fileno()])
            if reason:
                _send(conn, b"refused", reason.encode())
                raise wire.ProtocolError(reason)
            _send(conn, b"accepted")  # the child reads the caller's "go"
        except (OSError, ValueError, wire.ProtocolError):
            close_all(fds)
            conn.close()
            return
        finally:
            if pidfd is not None:
                os.close(pidfd)
        self._dispatch(request, conn)  # a child is there: _no_child_refusal made sure
        self.code.rewalk_if_due()  # the child has the request: this delays nobody

    def _no_child_refusal(self, waiting: list[int]) -> str:
        """Make sure a child can take the request before it is accepted: once accepted, the
        caller no longer runs it itself. A resting worker (or one whose spares are all busy)
        forks one now; when the system refuses the fork, the caller runs in-process."""
        if self.spares:
            return ""
        try:
            self._add_spare(rehearse=False, waiting=waiting)  # the request waits for it
        except OSError as exc:
            return f"the worker cannot start a process for the request: {exc.strerror or exc}"
        return ""

    def _key_refusal(self, key: bytes) -> str:
        if self._retire_if_code_changed():
            return admission.STALE_CODE
        reason = admission.key_refusal(self.key, key)
        if reason.startswith(admission.STALE):
            self.retire()  # the caller imports another tree than ours
        return reason

    def _retire_if_code_changed(self) -> bool:
        """Retire when the code on disk changed since we imported it; whether it did."""
        if self.listener is None or not self.code.changed():
            return False
        self.retire()
        return True

    def _dispatch(self, request, conn: socket.socket, undoing: str = "") -> bool:
        """Hand `request` to a spare (forked now if none is free); False when the system
        refused that fork. The child replies to the caller on `conn`, except the DEL
        `undoing` a lost ADD, whose result comes back here."""
        self.resting = False  # a caller came: the loop forks spares for the next ones
        fds = list(request.fds.values())
        reply_to = REPLY_TO_WORKER if undoing else REPLY_TO_CALLER
        if reply_to == REPLY_TO_CALLER:
            fds.append(conn.fileno())
        if self._no_child_refusal([*request.fds.values(), conn.fileno()]):
            return False
        child = self.spares.pop(0)
        child.request, child.conn, child.undoing = request, conn, undoing
        self.busy.append(child)
        try:
            wire.send_frame_with_fds(child.control, handoff_fields(request, reply_to), fds)
        except OSError:
            pass  # the child is gone: _collect sees its end of file and reports it
        return True

    def _collect(self, child: Child) -> None:
        try:
            chunk = child.control.recv(65536)
        except OSError:
            chunk = b""
        if chunk:
            child.output += chunk
            try:
                for message in child.messages():
                    self._child_said(child, message)
            except wire.ProtocolError:
                pass  # not our child's words: its end of file decides
            return
        self._drop(child)
        _, status = os.waitpid(child.pid, 0)
        if child in self.spares:
            self.spares.remove(child)  # died before it was needed; a new one will be forked
        elif child.undoing and child.state != RESULT:
            self._reply_lost_add(child, None)
        elif child.state == CHILD_RUNNING:
            self._child_lost(child, status)
        elif child.state == b"" and child.conn is not None:  # it died before the caller's "go" reached it
            self._finish_with_error(child, lost.before_running(child.request.command, status))

    def _child_said(self, child: Child, message: list[bytes]) -> None:
        kind = message[0] if message else b""
        if kind == RESULT and child.undoing and child.state != RESULT:
            child.state = kind
            self._reply_lost_add(child, message)
        elif kind in (CHILD_NO_GO, CHILD_REPLYING) and not child.undoing:
            child.state = kind
            self._release(child)  # the child holds its own copies; nothing is left for us to say
        elif kind == CHILD_RUNNING and not child.undoing:
            child.state = kind
        elif kind == CHILD_READY and child.state in (CHILD_NO_GO, CHILD_REPLYING) and child in self.busy:
            self._reuse(child)

    def _reuse(self, child: Child) -> None:
        """The child served its caller and is back in its own context: a spare again
        (unless we retired meanwhile: then it exits as spares do, when we drop it)."""
        self.busy.remove(child)
        child.request, child.conn, child.state, child.undoing = None, None, b"", ""
        if self.listener is None or len(self.spares) >= MAX_IDLE_CHILDREN:
            self._drop(child)  # it exits when its control socket closes
            os.waitpid(child.pid, 0)
            return
        self.spares.append(child)

    def _drop(self, child: Child) -> None:
        self.selector.unregister(child.control)
        child.control.close()
        if child in self.busy:
            self.busy.remove(child)

    def _child_lost(self, child: Child, status: int) -> None:
        """The child ended while running the request: tell the caller; undo a lost ADD first."""
        if child.request.command == "ADD":
            undo_env = dict(child.request.environ, CNI_COMMAND="DEL")
            what_happened = lost.describe(status)
            if not self._dispatch(replace(child.request, environ=undo_env), child.conn, undoing=what_happened):
                self._finish_with_error(child, lost.lost_add(what_happened, None))
        else:
            self._finish_with_error(child, lost.while_running(child.request.command, status))

    def _reply_lost_add(self, child: Child, undo_reply: list[bytes] | None) -> None:
        self._finish_with_error(child, lost.lost_add(child.undoing, undo_reply))

    def _finish_with_error(self, child: Child, message: str) -> None:
        self._finish(child, lost.error_result(message, child.request.stdin))

    def _finish(self, child: Child, reply: list[bytes]) -> None:
        try:
            child.conn.sendall(wire.encode_fields(reply))
        except OSError:
            pass  # the caller is gone (a runtime timeout killed it): nobody to tell
        self._release(child)

    def _release(self, child: Child) -> None:
        """Close our copies of the caller's connection and fds."""
        if child.conn is not None:
            child.conn.close()
            close_all(child.request.fds.values())
            child.conn = None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass

