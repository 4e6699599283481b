"""Ending workers by PID: for the demo, tests and benchmarks that give theirs a private socket dir.

A worker writes `<socket>.pid` while it listens. Before signalling that PID, we check that
the process is still a worker serving that very socket, so a PID the kernel has reused
for something else is never signalled.
"""

from __future__ import annotations

import glob
import os
import signal
import time

PID_SUFFIX = ".pid"


def stop_workers(directory: str, wait_seconds: float = 30.0) -> list[int]:
    """SIGTERM every worker serving a socket in `directory`; wait for them; return their PIDs."""
    pids = []
    for pid_file in glob.glob(os.path.join(directory, "*.sock" + PID_SUFFIX)):
        pid = _read_pid(pid_file)
        if pid is not None and _is_worker_for(pid, pid_file[: -len(PID_SUFFIX)]):
            try:
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + wait_seconds
    for pid in pids:
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    return pids


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _is_worker_for(pid: int, socket_path: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return any(b"cni_rkt.worker.server" in arg for arg in argv) and socket_path.encode() in argv


def _running(pid: int) -> bool:
    """Alive and not a zombie (a worker's parent, if any, may not reap it at once)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False
