"""The Go plugin's on-disk format: directory, file names and file contents.

`<dataDir>/<network>/<address>` holds `containerID\\r\\nifname` (older versions wrote
only the container id). The network name is checked here so that it cannot lead a write
outside `dataDir`; the container id and ifname that end up in file contents were already
checked at the protocol boundary (`protocol/invocation.py`), so none can forge a line.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

from cni_rkt.errors import invalid_config
from cni_rkt.protocol import spec

LOCK_FILE = "lock"
LAST_RESERVED_PREFIX = "last_reserved_ip."
SCRATCH_PREFIX = ".cni-rkt-tmp-"  # never a valid address nor one of Go's names
LINE_BREAK = "\r\n"


def file_content(container_id: str, ifname: str) -> bytes:
    return f"{container_id.strip()}{LINE_BREAK}{ifname}".encode()


def parse_content(data: bytes) -> tuple[str, str | None]:
    """(container id, ifname), ifname None for a legacy file; trimmed as the reference does.

    Bytes that are not UTF-8 (garbage after a crash) become U+FFFD: such a file then matches
    no valid container id, yet can be indexed (SQLite refuses lone surrogates), listed and
    released."""
    text = data.decode("utf-8", errors="replace").strip()
    container_id, sep, ifname = text.partition(LINE_BREAK)
    return (container_id, ifname) if sep else (text, None)


def address_of_name(name: str) -> tuple[int, int] | None:
    """(family, number) of an address file's name, None for any other file.

    Plain ints rather than ipaddress values: a rebuild parses every name.
    """
    for family, af in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            return family, int.from_bytes(socket.inet_pton(af, name), "big")
        except OSError:
            continue
    return None


def network_dir(data_dir: str, network: str) -> str:
    """`dataDir/<network>`, refusing any name or symlink that would lead elsewhere."""
    if not isinstance(network, str) or not spec.NAME_PATTERN.match(network):
        raise invalid_config("invalid characters found in network name", str(network))
    directory = os.path.join(data_dir, network)
    if os.path.realpath(directory) != os.path.join(os.path.realpath(data_dir), network):
        raise invalid_config(f"ipam.dataDir: {directory} resolves outside {data_dir}", "ipam.dataDir")
    return directory



def read_nofollow(path: str, dir_fd: int | None = None) -> bytes | None:
    """A small file's bytes; None for a symlink, a directory, a FIFO (no wait for a writer)
    or anything unreadable."""
    try:
        found = read_regular(path, dir_fd)
    except OSError:
        return None
    return found[0] if found else None


def read_regular(path: str, dir_fd: int | None = None) -> tuple[bytes, os.stat_result] | None:
    """A small regular file's bytes and stat; None when it is gone, a symlink or no regular
    file (a FIFO is opened without waiting for a writer); OSError when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
            return None
        raise
    try:
        info = os.fstat(fd)
        return (os.read(fd, 4096), info) if stat.S_ISREG(info.st_mode) else None
    finally:
        os.close(fd)


def scan_attachment(directory: str, container_id: str, ifname: str) -> list[str]:
    """Without lock or index: the addresses (container_id, ifname) holds, else its legacy files."""
    exact, legacy = [], []
    for name in sorted(os.listdir(directory), key=lambda n: address_of_name(n) or (0, 0)):
        data = read_nofollow(os.path.join(directory, name)) if address_of_name(name) else None
        if data is not None:
            owner = parse_content(data)
            if owner == (container_id, ifname):
                exact.append(name)
            elif owner == (container_id, None):
                legacy.append(name)
    return exact or legacy
