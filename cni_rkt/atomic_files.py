"""Files that are replaced whole: a reader sees the old content or the new, never half.

Written beside the target under a scratch name, then renamed over it. Durable writes
also fsync the data and the directory, for state that must survive a crash (flannel's
saved delegate configs); caches that can be rebuilt skip that cost.
"""

from __future__ import annotations

import os


def write_atomically(path: str, data: bytes, *, mode: int = 0o600, dir_mode: int = 0o700, durable: bool = True) -> None:
    """Replace `path` with `data`; raises OSError and then leaves no scratch file behind.

    The file gets exactly `mode`, whatever the umask (launchers must be 0755 even when
    installed from a 077 shell); `dir_mode` applies, umask and all, to directories it creates.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=dir_mode, exist_ok=True)
    # Not tempfile: its imports cost milliseconds on every plugin start.
    scratch = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, mode)  # open() honoured the umask
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(scratch, path)
    except BaseException:
        remove_if_present(scratch)
        raise
    if durable:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_if_present(path: str) -> bool:
    """Remove a file; absent is fine. Says whether it removed anything."""
    try:
        os.remove(path)
        return True
    except FileNotFoundError:
        return False
