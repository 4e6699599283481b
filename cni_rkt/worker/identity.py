"""Which worker a launcher may use: the switch, the socket path and the identity key.

Imported by the launcher before anything heavy, so: `os` only (hashlib is for install time).

A worker serves exactly one installation: its socket name carries the package version and
a hash of the interpreter and import roots (`install_id`), and every request carries a key
that adds a stamp of the code files on disk. A worker whose code changed under it (an
upgrade in place, a development checkout edited) is stale: it refuses and retires.
"""

from __future__ import annotations

import os

# `environ` below is os.environ or a dict; no typing import: it would double VERSION's cost.

DEFAULT_SOCKET_DIR = "/run/cni-rkt"
# Operators turn the worker off without touching a runtime's environment by creating this file.
NO_WORKER_FLAG = "/etc/cni-rkt/no-worker"
DEFAULT_IDLE_SECONDS = 60.0


def install_id(interpreter: str, roots: list[str]) -> str:
    """A short hash naming one installation (interpreter + import roots)."""
    import hashlib

    text = "\0".join([interpreter, *roots])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def worker_enabled(environ: dict[str, str]) -> bool:
    return environ.get("CNI_RKT_WORKER", "1") != "0" and not os.path.exists(NO_WORKER_FLAG)


def socket_dir(environ: dict[str, str], rendered_dir: str = "") -> str | None:
    """Where the worker's socket lives; None when there is no place we may use.

    Only root gets the default /run/cni-rkt (a 0700 root directory); anyone else needs an
    explicit directory (the environment or one rendered into the launcher at install).
    """
    chosen = environ.get("CNI_RKT_WORKER_SOCKET_DIR") or rendered_dir
    if chosen:
        return chosen
    return DEFAULT_SOCKET_DIR if os.geteuid() == 0 else None


def socket_path(directory: str, version: str, install: str) -> str:
    return os.path.join(directory, f"worker-{version}-{install}.sock")


def idle_seconds(environ: dict[str, str]) -> float:
    try:
        value = float(environ.get("CNI_RKT_WORKER_IDLE", DEFAULT_IDLE_SECONDS))
    except ValueError:
        return DEFAULT_IDLE_SECONDS
    return value if value > 0 else DEFAULT_IDLE_SECONDS


def code_stamp(package_dir: str, roots: list[str]) -> str:
    """Changes when a .py file under the package or an import root's entries change."""
    count = mtimes = sizes = 0
    pending = [package_dir]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    info = entry.stat()
                    count += 1
                    mtimes += info.st_mtime_ns
                    sizes += info.st_size
    root_mtimes = []
    for root in roots:
        try:
            root_mtimes.append(str(os.stat(root).st_mtime_ns))
        except OSError:
            root_mtimes.append("-")
    return f"{count}.{mtimes}.{sizes}.{'.'.join(root_mtimes)}"


def request_key(version: str, install: str, stamp: str) -> bytes:
    return f"{version}|{install}|{stamp}".encode()
