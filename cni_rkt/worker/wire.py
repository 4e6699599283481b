"""Framing of the worker protocol; stdlib-only and json-free, as the launcher imports it.

A frame is a 4-byte big-endian length and that many bytes, which hold a list of fields,
each again length-prefixed. The conversation on one connection:

    client -> server   request frame [protocol, key, plugin, umask, environ, stdin]
                       with SCM_RIGHTS fds [netns, mntns, root, cwd, stderr]
    server -> client   [b"accepted"]  or  [b"refused", reason]      (then it closes)
    client -> server   [b"go"]        the client is committed: it will not fall back
    server -> client   [b"result", exit code, stdout]

The "go" step makes a request run at most once: a client that gave up waiting for
"accepted" (and runs in-process) closes the socket, and the request never runs.

Inside the worker, the parent hands an admitted request to a pre-forked child the same
way: the request's fields plus the caller's uid and gid and whom to reply to, with the
same fds and the caller's connection. From "accepted" on, the child is the other
end of the conversation: it reads the "go" and writes the result (pool.py).
"""

import sys

import _socket

PROTOCOL = b"cni-rkt-worker/1"
FD_NAMES = ("netns", "mntns", "root", "cwd", "stderr")
MAX_HANDOFF_FDS = len(FD_NAMES) + 1  # and the caller's connection
MAX_FRAME = 64 * 1024 * 1024  # a network config is kilobytes; anything bigger is not ours
_CHUNK = 65536


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol, or hung up early."""


def encode_fields(fields: list[bytes]) -> bytes:
    body = b"".join(len(f).to_bytes(4, "big") + f for f in fields)
    return len(body).to_bytes(4, "big") + body


def decode_fields(body: bytes) -> list[bytes]:
    fields = []
    offset = 0
    while offset < len(body):
        if offset + 4 > len(body):
            raise ProtocolError("truncated field length")
        size = int.from_bytes(body[offset : offset + 4], "big")
        offset += 4
        if offset + size > len(body):
            raise ProtocolError("truncated field")
        fields.append(body[offset : offset + size])
        offset += size
    return fields


def frame_length(head: bytes) -> int:
    size = int.from_bytes(head[:4], "big")
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is too large")
    return size


def read_frame(sock, first: bytes = b"", deadline: float | None = None) -> list[bytes]:
    """Read one whole frame from a blocking socket (`first`: bytes already received), by
    `deadline` (time.monotonic()) if given: else the socket's timeout is for each read."""
    data = bytearray(first)
    while len(data) < 4:
        _receive_into(sock, data, 4, deadline)
    size = frame_length(data)
    while len(data) < 4 + size:
        _receive_into(sock, data, 4 + size, deadline)
    if len(data) != 4 + size:
        raise ProtocolError("unexpected bytes after a frame")
    return decode_fields(bytes(data[4:]))


def send_frame_with_fds(sock, fields: list[bytes], fds: list[int]) -> None:
    frame = encode_fields(fields)
    rights = b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)
    sent = sock.sendmsg([frame], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    if sent < len(frame):
        sock.sendall(frame[sent:])


def receive_frame_with_fds(sock, max_fds: int = len(FD_NAMES),
                           deadline: float | None = None) -> tuple[list[bytes], list[int]]:
    """One frame and the fds that came with it (closed again if the frame is broken)."""
    import os

    _limit_wait(sock, deadline)
    data, ancdata, _flags, _addr = sock.recvmsg(65536, _socket.CMSG_SPACE(4 * max_fds))
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds += [int.from_bytes(payload[i : i + 4], sys.byteorder) for i in range(0, usable, 4)]
    try:
        for fd in fds:
            os.set_inheritable(fd, False)
        if not data:
            raise ProtocolError("connection closed")
        return read_frame(sock, data, deadline), fds
    except (OSError, ProtocolError):
        for fd in fds:
            os.close(fd)
        raise


def _limit_wait(sock, deadline: float | None) -> None:
    """A peer that sends a byte now and then must not hold us past `deadline`."""
    if deadline is None:
        return
    import time

    left = deadline - time.monotonic()
    if left <= 0:
        raise ProtocolError("the frame took too long to arrive")
    sock.settimeout(left)


def _receive_into(sock, data: bytearray, until: int, deadline: float | None = None) -> None:
    """More of the frame, never past its end (`until` bytes): the next frame may follow at
    once (the worker's "accepted", then its reply for a child lost before the "go")."""
    _limit_wait(sock, deadline)
    chunk = sock.recv(min(until - len(data), _CHUNK))  # not a buffer the size of a whole frame
    if not chunk:
        raise ProtocolError("connection closed mid-frame" if data else "connection closed")
    data += chunk


def encode_environ(environ) -> bytes:
    """The environment as /proc/<pid>/environ spells it: KEY=VALUE, NUL-separated."""
    return b"\0".join(f"{k}={v}".encode("utf-8", "surrogateescape") for k, v in environ.items())


def decode_environ(data: bytes) -> dict[str, str]:
    environ = {}
    for item in data.split(b"\0") if data else ():
        key, sep, value = item.partition(b"=")
        if not sep:
            raise ProtocolError("environment entry without '='")
        environ[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return environ
