"""The worker process: import everything once, then fork a child per request.

Life cycle: enter pid 1's namespaces (root only), stamp the code on disk, take the lock
beside the socket (one worker per socket), import the plugins, listen, serve, and exit
after `idle` seconds without a request, or as soon as a client shows the code changed.

Who is served: a caller with the worker's own uid, in the same user namespace, with the
same effective capabilities (so a request never runs with more privilege than its caller),
and whose request key names this version, installation and code. Anyone else is refused
and runs in-process.

If a request's child dies without a result, the caller gets an error; if it was an ADD,
the worker first runs DEL for it, so a lost ADD leaves no half-configured pod.
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import stat
import sys
import time
from dataclasses import dataclass, field, replace

from cni_rkt import __version__
from cni_rkt.worker import identity, namespaces, wire

# Imported before serving, so that no request pays for them.
PRELOAD = ("json", "subprocess", "ctypes", "pyroute2", "netaddr", "cni_rkt.protocol.result",
           "cni_rkt.protocol.delegate", "cni_rkt.protocol.undo")
LOCK_WAIT_SECONDS = 3.0  # a retiring worker releases the lock at once; wait a little for it
REQUEST_READ_TIMEOUT = 5.0


@dataclass(slots=True)
class Running:
    """A forked child serving one request; its reply arrives on `pipe`."""

    request: object  # request.Request
    conn: socket.socket
    pid: int
    pipe: int
    output: bytearray = field(default_factory=bytearray)
    undoing: str = ""  # set on the DEL child that undoes a lost ADD: what happened to the ADD


def main(path: str, idle: float, roots: list[str]) -> None:
    if os.geteuid() == 0:
        namespaces.leave_caller_namespaces()
    stamp = identity.code_stamp(os.path.dirname(sys.modules["cni_rkt"].__file__), roots)
    key = identity.request_key(__version__, identity.install_id(sys.executable, roots), stamp)
    lock = take_lock(path)
    if lock is None:
        return
    preload()
    Worker(path, key, lock, idle).serve_forever()


def take_lock(path: str) -> int | None:
    """The lock that makes this the only worker on `path`; None if another holds it."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        return None  # not a private directory of ours: anyone could stand in for the worker
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


def preload() -> None:
    from cni_rkt.protocol.runner import PLUGIN_MODULES

    for name in (*PRELOAD, *PLUGIN_MODULES.values()):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a plugin not written yet is fine; a broken one is not
                raise
    gc.collect()
    gc.freeze()  # forked children then leave the imported objects' pages shared


def refusal(pid: int, uid: int) -> str:
    """Why a peer may not use this worker, or "" if it may."""
    if uid != os.geteuid():
        return f"uid {uid} may not use a worker of uid {os.geteuid()}"
    if pid == 0:
        return "caller is in another pid namespace"
    try:
        if os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"):
            return "caller is in another user namespace"
        if _effective_capabilities(str(pid)) != _effective_capabilities("self"):
            return "caller has other capabilities"
    except OSError as exc:
        return f"cannot inspect the caller: {exc.strerror}"
    return ""


def _effective_capabilities(pid: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next((line for line in f if line.startswith("CapEff:")), "")


def receive_request(conn: socket.socket) -> tuple[list[bytes], list[int]]:
    fd_bytes = 4 * len(wire.FD_NAMES)
    data, ancdata, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(fd_bytes))
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds += [int.from_bytes(payload[i : i + 4], sys.byteorder) for i in range(0, usable, 4)]
    for fd in fds:
        os.set_inheritable(fd, False)
    if not data:
        _close_all(fds)
        raise wire.ProtocolError("connection closed")
    try:
        return wire.read_frame(conn, data), fds
    except (OSError, wire.ProtocolError):
        _close_all(fds)
        raise


def _close_all(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _send(conn: socket.socket, *fields: bytes) -> None:
    conn.sendall(wire.encode_fields(list(fields)))


class Worker:
    def __init__(self, path: str, key: bytes, lock: int, idle: float) -> None:
        self.path = path
        self.key = key
        self.lock = lock
        self.idle = idle
        self.running: dict[int, Running] = {}  # by pipe fd
        self.selector = selectors.DefaultSelector()
        self.listener = self._listen()
        self.last_activity = time.monotonic()
        with open(path + ".pid", "w") as f:
            f.write(f"{os.getpid()}\n")

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
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            while self.listener is not None or self.running:
                events = self.selector.select(self._timeout())
                for selected, _mask in events:
                    if selected.fileobj is self.listener:
                        self._accept()
                    else:
                        self._collect(selected.data)
                if self.running or events:
                    self.last_activity = time.monotonic()
                elif self.listener is not None and time.monotonic() - self.last_activity >= self.idle:
                    self.retire()
        finally:
            self.retire()

    def _timeout(self) -> float | None:
        if self.listener is None or self.running:
            return None
        return max(0.0, self.idle - (time.monotonic() - self.last_activity))

    def retire(self) -> None:
        """Stop taking requests and give up the socket at once; running ones still finish."""
        if self.listener is None:
            return
        self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        for suffix, name in (("", self.path), (".pid", self.path + ".pid")):
            try:
                if suffix or os.stat(name).st_ino == self.socket_inode:
                    os.unlink(name)
            except FileNotFoundError:
                pass
        os.close(self.lock)

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.settimeout(REQUEST_READ_TIMEOUT)
        fds: list[int] = []
        try:
            from cni_rkt.worker.request import parse_request

            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            pid, uid, gid = (int.from_bytes(creds[i : i + 4], sys.byteorder) for i in (0, 4, 8))
            fields, fds = receive_request(conn)
            reason = refusal(pid, uid)
            request = None if reason else parse_request(fields, fds, uid, gid)
            reason = reason or self._key_refusal(request.key) or self._plugin_refusal(request.plugin)
            if reason:
                _send(conn, b"refused", reason.encode())
                raise wire.ProtocolError(reason)
            _send(conn, b"accepted")
            if wire.read_frame(conn) != [b"go"]:
                raise wire.ProtocolError("client did not confirm")
            conn.settimeout(None)
        except (OSError, ValueError, wire.ProtocolError):
            _close_all(fds)
            conn.close()
            return
        self._start(request, conn)

    def _key_refusal(self, key: bytes) -> str:
        if key == self.key:
            return ""
        if key.rsplit(b"|", 1)[0] == self.key.rsplit(b"|", 1)[0]:
            self.retire()  # the code on disk changed since we imported it
            return "stale: the code changed since this worker started"
        return "the worker belongs to another version or installation"

    @staticmethod
    def _plugin_refusal(plugin: str) -> str:
        from cni_rkt.protocol.runner import PLUGIN_MODULES

        return "" if plugin in PLUGIN_MODULES else f"unknown plugin {plugin!r}"

    def _start(self, request, conn: socket.socket, undoing: str = "") -> None:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            self._child(request, conn, read_end, write_end)
        os.close(write_end)
        running = Running(request, conn, pid, read_end, undoing=undoing)
        self.running[read_end] = running
        self.selector.register(read_end, selectors.EVENT_READ, running)

    def _child(self, request, conn: socket.socket, read_end: int, write_end: int) -> None:
        """In the forked child: drop the worker's own fds, serve, reply on the pipe, exit."""
        status = 1
        try:
            from cni_rkt.worker.request import serve

            os.close(read_end)
            conn.close()  # the parent replies: it can tell a complete result from a lost one
            if self.listener is not None:
                self.listener.close()
                os.close(self.lock)
            for other in self.running.values():
                os.close(other.pipe)
                other.conn.close()
                if other.request is not request:
                    _close_all(other.request.fds.values())
            stdout, code = serve(request)
            reply = wire.encode_fields([b"result", str(code).encode(), stdout])
            view = memoryview(reply)
            while view:
                view = view[os.write(write_end, view) :]
            status = 0
        finally:
            os._exit(status)

    def _collect(self, running: Running) -> None:
        chunk = os.read(running.pipe, 65536)
        if chunk:
            running.output += chunk
            return
        self.selector.unregister(running.pipe)
        os.close(running.pipe)
        del self.running[running.pipe]
        _, status = os.waitpid(running.pid, 0)
        reply = self._complete_reply(running.output) if status == 0 else None
        if running.undoing:
            self._reply_lost_add(running, reply)
        elif reply is not None:
            self._finish(running, reply)
        elif running.request.command == "ADD":
            undo_env = dict(running.request.environ, CNI_COMMAND="DEL")
            self._start(replace(running.request, environ=undo_env), running.conn, undoing=_describe(status))
        else:
            self._finish_with_error(running, f"the worker's process for {running.request.command} {_describe(status)}")

    @staticmethod
    def _complete_reply(output: bytearray) -> list[bytes] | None:
        try:
            size = wire.frame_length(output)
            fields = wire.decode_fields(bytes(output[4:])) if len(output) == 4 + size else None
        except wire.ProtocolError:
            return None
        return fields if fields and len(fields) == 3 and fields[0] == b"result" else None

    def _reply_lost_add(self, running: Running, undo_reply: list[bytes] | None) -> None:
        what = f"the worker's process for ADD {running.undoing}"
        if undo_reply is not None and undo_reply[1] == b"0":
            self._finish_with_error(running, f"{what}; DEL ran and removed what it had set up")
            return
        detail = "DEL did not finish either"
        if undo_reply is not None:
            try:
                detail = "DEL failed too: " + json.loads(undo_reply[2]).get("msg", "")
            except (ValueError, AttributeError):
                pass
        self._finish_with_error(running, f"{what}; {detail}: run DEL for this container")

    def _finish_with_error(self, running: Running, message: str) -> None:
        from cni_rkt.errors import CNIError, ErrorCode
        from cni_rkt.protocol.runner import config_version_hint, error_reply

        stdin = running.request.stdin
        stdout = error_reply(CNIError(ErrorCode.INTERNAL, message), config_version_hint(stdin))
        self._finish(running, [b"result", b"1", stdout])

    def _finish(self, running: Running, reply: list[bytes]) -> None:
        try:
            running.conn.sendall(wire.encode_fields(reply))
        except OSError:
            pass  # the caller is gone (a runtime timeout killed it): nobody to tell
        running.conn.close()
        _close_all(running.request.fds.values())


def _exit_on_sigterm(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # through serve_forever's finally: the socket is removed


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"ended with status {os.waitstatus_to_exitcode(status)} and no result"
