"""Reading a plugin's stdin, shared by the launcher's client and runner.main (stdlib only)."""

import errno
import sys


def read_stdin(command: str) -> bytes:
    """All of stdin (nothing for VERSION, which ignores it); OSError when it cannot be read.

    A runtime may exec us with fd 0 closed: Python then has no sys.stdin at all.
    """
    if command == "VERSION":
        return b""
    if sys.stdin is None:
        raise OSError(errno.EBADF, "stdin is closed")
    return sys.stdin.buffer.read()
