"""Which worker a launcher may use: the switch, the socket path and the identity key.

Imported by every launcher exec, so it imports `posix` only: `os` would add about 2 ms of
its 30 (it builds collections.abc), and `from __future__` another module. hashlib is for
install time.

A worker serves exactly one installation: its socket name carries the package version and
a hash of the interpreter and import roots (`install_id`), and every request carries a key
that adds which package directory the launcher imports (`tree_id`). The worker itself
watches its code on disk (codewatch.py): one whose code changed under it (an upgrade in
place, a development checkout edited) is stale: it refuses and retires.
"""

import posix

# `environ` below is a dict of str; no typing import: it would double VERSION's cost.

DEFAULT_SOCKET_DIR = "/run/cni-rkt"
# Operators turn the worker off without touching a runtime's environment by creating this file.
NO_WORKER_FLAG = "/etc/cni-rkt/no-worker"
DEFAULT_IDLE_SECONDS = 600.0
REST_FRACTION = 0.1  # of the idle time: how long a worker keeps its children without a request (server.py)


def install_id(interpreter: str, roots: list[str]) -> str:
    """A short hash naming one installation (interpreter + import roots)."""
    import hashlib

    text = "\0".join([interpreter, *roots])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def worker_enabled(environ: dict[str, str]) -> bool:
    return environ.get("CNI_RKT_WORKER", "1") != "0" and not _exists(NO_WORKER_FLAG)


def _exists(path: str) -> bool:
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def socket_dir(environ: dict[str, str], rendered_dir: str = "") -> str | None:
    """Where the worker's socket lives; None when there is no place we may use.

    Only root gets the default /run/cni-rkt (a 0700 root directory); anyone else needs an
    explicit directory (the environment or one rendered into the launcher at install).
    """
    chosen = environ.get("CNI_RKT_WORKER_SOCKET_DIR") or rendered_dir
    if chosen:
        return chosen
    return DEFAULT_SOCKET_DIR if posix.geteuid() == 0 else None


def socket_path(directory: str, version: str, install: str) -> str:
    separator = "" if directory.endswith("/") else "/"  # as os.path.join would
    return f"{directory}{separator}worker-{version}-{install}.sock"


def idle_seconds(environ: dict[str, str]) -> float:
    try:
        value = float(environ.get("CNI_RKT_WORKER_IDLE", DEFAULT_IDLE_SECONDS))
    except ValueError:
        return DEFAULT_IDLE_SECONDS
    return value if value > 0 else DEFAULT_IDLE_SECONDS


def tree_id(package_dir: str) -> str:
    """Which directory this is (device and inode), as seen from any mount namespace.

    A caller whose mount namespace shows another tree at the same path gets another id,
    so a worker never runs code the caller would not have run.
    """
    info = posix.stat(package_dir)
    return f"{info.st_dev}:{info.st_ino}"


def request_key(version: str, install: str, tree: str) -> bytes:
    return f"{version}|{install}|{tree}".encode()
