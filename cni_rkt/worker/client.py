"""The launcher's entry point: ask the worker, else run in-process and start a worker.

Every exec pays for what this imports, so it is `posix`, `_socket` and the two tiny worker
modules: not `os` (it builds collections.abc: 2 ms of a 30 ms exec) nor `from __future__`
(the launcher answers VERSION before even this). The plugin code (pyroute2 and all) is
imported only when no worker answers.
"""

import posix
import sys

import _socket

import cni_rkt
from cni_rkt.protocol.stdio import read_stdin
from cni_rkt.worker import identity, wire

ACCEPT_TIMEOUT = 5.0  # seconds to wait for "accepted" before running in-process instead
_NOT_PERMITTED = (1, 13)  # EPERM, EACCES (the errno module would be one more import)
_BOOTSTRAP = (
    "import sys;sys.path[:0]=sys.argv[3:];from cni_rkt.worker.server import main;"
    "main(sys.argv[1],float(sys.argv[2]),sys.argv[3:])"
)


class WorkerLost(Exception):
    """The worker accepted the request, then went away without a result."""


class Declined(Exception):
    """No worker took the request (none listening, refused, stale); it did not run."""

    def __init__(self, reason: str, start_another: bool) -> None:
        super().__init__(reason)
        self.start_another = start_another  # true when no usable worker is there


def main(plugin: str, roots: list[str], install: str, rendered_socket_dir: str = "") -> None:
    environ = _environ()
    command = environ.get("CNI_COMMAND", "")
    try:
        stdin = read_stdin(command)
    except OSError as exc:
        from cni_rkt.protocol.runner import stdin_error_reply

        _finish(*stdin_error_reply(exc))
    path = None
    if command not in ("", "VERSION") and identity.worker_enabled(environ):
        directory = identity.socket_dir(environ, rendered_socket_dir)
        if directory is not None:
            path = identity.socket_path(directory, cni_rkt.__version__, install)
    if path is not None:
        key = identity.request_key(cni_rkt.__version__, install, identity.tree_id(cni_rkt.__path__[0]))
        try:
            _finish_now(*request(path, key, plugin, environ, stdin))
        except WorkerLost as lost:
            _finish_now(*_lost_reply(plugin, command, str(lost), stdin))
        except Declined as declined:
            if declined.start_another:
                start_worker(path, identity.idle_seconds(environ), roots)
    import os

    from cni_rkt.protocol.runner import run

    _finish(*run(plugin, os.environ, stdin))


def _environ() -> dict[str, str]:
    """The environment as os.environ would decode it (without importing os)."""
    return {k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape") for k, v in posix.environ.items()}


def _finish(stdout: bytes, code: int) -> None:
    sys.stdout.buffer.write(stdout)
    sys.stdout.buffer.flush()
    sys.exit(code)


def _finish_now(stdout: bytes, code: int) -> None:
    """Like _finish, without the interpreter's tear-down (milliseconds): this process
    holds nothing that needs it once stdout is flushed."""
    sys.stdout.buffer.write(stdout)
    sys.stdout.buffer.flush()
    sys.stderr.flush()
    posix._exit(code)


def request(path: str, key: bytes, plugin: str, environ, stdin: bytes) -> tuple[bytes, int]:
    """(stdout, exit code) from the worker at `path`.

    Raises Declined when no worker took the request (it did not run: run it in-process),
    WorkerLost when the worker took it and gave no result: it may have run, so running it
    again in-process would not be safe.
    """
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    fds: list[int] = []
    try:
        sock.settimeout(ACCEPT_TIMEOUT)
        try:
            sock.connect(path)
        except OSError as exc:
            # Shut out of the socket's directory, a worker we started would be too.
            start_another = exc.errno not in _NOT_PERMITTED
            raise Declined(f"no worker at {path}: {exc.strerror}", start_another=start_another) from None
        if not _trusted_server(sock):
            raise Declined("the worker's socket belongs to another user", start_another=False)
        try:
            fds = _namespace_fds()
        except OSError as exc:  # no /proc (a bare chroot): no worker can serve us, none to start
            raise Declined(f"cannot hand over where the request runs: {exc}", start_another=False) from None
        try:
            _send_request(sock, key, plugin, environ, stdin, fds)
            answer = wire.read_frame(sock)
        except (OSError, wire.ProtocolError) as exc:
            raise Declined(f"worker did not answer: {exc}", start_another=True) from None
        if answer[:1] != [b"accepted"]:
            reason = answer[1].decode(errors="replace") if len(answer) > 1 else "refused"
            raise Declined(reason, start_another=reason.startswith("stale"))  # admission.STALE
        try:
            sock.sendall(wire.encode_fields([b"go"]))
        except OSError:
            pass  # the worker may have answered already and hung up (the child died): read it
        try:
            sock.settimeout(None)  # committed: a plugin may take as long as it takes
            reply = wire.read_frame(sock)
        except (OSError, wire.ProtocolError) as exc:
            raise WorkerLost(str(exc)) from None
        if len(reply) != 3 or reply[0] != b"result":
            raise WorkerLost("malformed reply")
        return reply[2], int(reply[1])
    finally:
        for fd in fds:
            if fd > 2:
                posix.close(fd)
        sock.close()


def _trusted_server(sock) -> bool:
    """Only a worker run by root or by us may answer (the socket could be anyone's)."""
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    uid = int.from_bytes(creds[4:8], sys.byteorder)
    return uid in (0, posix.geteuid())


def _namespace_fds() -> list[int]:
    """The fds named by wire.FD_NAMES: where the request must run, and where its logs go."""
    flags = posix.O_RDONLY | posix.O_CLOEXEC
    fds = [posix.open("/proc/self/ns/net", flags), posix.open("/proc/self/ns/mnt", flags)]
    directory = posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC
    fds += [posix.open("/", directory), posix.open(".", directory)]  # a chroot's root, if we are in one
    try:
        posix.fstat(2)
        fds.append(2)
    except OSError:  # no stderr: the request's logs go nowhere, as they would in-process
        fds.append(posix.open("/dev/null", posix.O_WRONLY | posix.O_CLOEXEC))
    return fds


def _send_request(sock, key: bytes, plugin: str, environ, stdin: bytes, fds: list[int]) -> None:
    umask = posix.umask(0o022)
    posix.umask(umask)
    fields = [wire.PROTOCOL, key, plugin.encode(), str(umask).encode(), wire.encode_environ(environ), stdin]
    wire.send_frame_with_fds(sock, fields, fds)


def _lost_reply(plugin: str, command: str, reason: str, stdin: bytes) -> tuple[bytes, int]:
    from cni_rkt.errors import CNIError, ErrorCode
    from cni_rkt.protocol.runner import config_version_hint, error_reply, log

    log(f"{plugin}: the cni-rkt worker went away during {command}: {reason}")
    error = CNIError(
        ErrorCode.INTERNAL,
        f"cni-rkt worker ended without a result for {command}; the network state of this container is unknown",
        "run DEL for this container before retrying",
    )
    return error_reply(error, config_version_hint(stdin)), 1


def start_worker(path: str, idle: float, roots: list[str]) -> None:
    """Start a worker for next time: detached (double fork, own session), stdio on /dev/null.

    Failures are ignored: without a worker every call simply runs in-process.
    """
    import os

    argv = [sys.executable, "-IS", "-c", _BOOTSTRAP, path, repr(idle), *roots]
    try:
        first = os.fork()
    except OSError:
        return
    if first:
        os.waitpid(first, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, 65536)
        os.chdir("/")
        os.execve(sys.executable, argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    finally:
        os._exit(127)
