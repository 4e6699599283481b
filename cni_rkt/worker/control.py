"""Ending workers by PID: for the demo, tests and benchmarks that give theirs a private socket dir.

Workers are found by their command line (the bootstrap names the socket path), not by a
pid file, so that one still importing its modules is found too; only the worker itself
is signalled, not its spare children (they end with it), and never a process that merely
happens to have a recycled PID.
"""

from __future__ import annotations

import os
import signal
import time

_SERVER_MODULE = b"cni_rkt.worker.server"


def stop_workers(directory: str, wait_seconds: float = 30.0) -> list[int]:
    """SIGTERM every worker serving a socket in `directory`; wait for them; return their PIDs."""
    pids = worker_pids(directory)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait_seconds
    for pid in pids:
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    return pids


def worker_pids(directory: str) -> list[int]:
    """The workers (not their children) whose socket is in `directory`."""
    inside = os.path.join(os.path.abspath(directory), "").encode()
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if any(_SERVER_MODULE in arg for arg in argv) and any(arg.startswith(inside) for arg in argv):
            parents[int(name)] = ppid
    return sorted(pid for pid, ppid in parents.items() if ppid not in parents)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a worker's parent, if any, may not reap it at once)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False
