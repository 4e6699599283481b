"""Finding, describing and ending workers by PID: for `cni-rkt worker`, the demo, and the
tests and benchmarks that give theirs a private socket dir.

Workers are found by their command line (the bootstrap names the socket path), not by a
pid file, so that one still importing its modules is found too; only the worker itself
is signalled, not its children (spares end with it, and one still serving a caller after
its worker died must finish, not be interrupted), and never a process that merely happens
to have a recycled PID. Children share the worker's command line; their process name
(/proc/<pid>/comm, what ps and top show) tells them apart, even once orphaned.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

_SERVER_MODULE = b"cni_rkt.worker.server"
WORKER_NAME, CHILD_NAME = "cni-rkt-worker", "cni-rkt-child"  # at most 15 bytes (TASK_COMM_LEN)
# The bootstrap's argv (client.start_worker): python -IS -c CODE SOCKET IDLE ROOTS...
_SOCKET_ARG, _IDLE_ARG = 4, 5


@dataclass
class WorkerInfo:
    pid: int
    socket: str
    idle_seconds: float
    uptime_seconds: float
    resident_kib: int
    peak_resident_kib: int
    children: dict[int, int] = field(default_factory=dict)  # pid -> resident KiB

    @property
    def listening(self) -> bool:
        return os.path.exists(self.socket)  # gone once it retired (idle, stopped, code changed)


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
    return sorted(_workers_and_children(directory)[0])


def describe_workers(directory: str) -> list[WorkerInfo]:
    """What each worker serving a socket in `directory` is, from /proc (those that vanish
    while being read are left out)."""
    workers, children = _workers_and_children(directory)
    described = []
    for pid, argv in sorted(workers.items()):
        try:
            resident, peak = _memory_kib(pid)
            info = WorkerInfo(
                pid=pid,
                socket=argv[_SOCKET_ARG].decode(errors="surrogateescape"),
                idle_seconds=float(argv[_IDLE_ARG]),
                uptime_seconds=_uptime_seconds(pid),
                resident_kib=resident,
                peak_resident_kib=peak,
            )
            for child in children.get(pid, ()):
                info.children[child] = _memory_kib(child)[0]
        except (OSError, IndexError, ValueError):
            continue
        described.append(info)
    return described


def name_this_process(name: str) -> None:
    """Best effort: set the name ps, top and this module see (Linux lets a process rename itself)."""
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(name)
    except OSError:
        pass


def _workers_and_children(directory: str) -> tuple[dict[int, list[bytes]], dict[int, list[int]]]:
    """{worker pid: its argv} and {worker pid: its children's pids} (children run the same argv)."""
    inside = os.path.join(os.path.abspath(directory), "").encode()
    found: dict[int, tuple[int, str, list[bytes]]] = {}  # pid -> (parent pid, name, argv)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if not (any(_SERVER_MODULE in arg for arg in argv) and any(arg.startswith(inside) for arg in argv)):
                continue
            with open(f"/proc/{name}/stat") as f:
                command, fields = f.read().split(" (", 1)[1].rsplit(") ", 1)
            found[int(name)] = (int(fields.split()[1]), command, argv)
        except (OSError, IndexError, ValueError):
            continue
    # A child: named so, or (forked a moment ago, not named yet) the child of a match.
    workers = {pid: argv for pid, (ppid, command, argv) in found.items() if command != CHILD_NAME and ppid not in found}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _command, _argv) in sorted(found.items()):
        if ppid in workers:
            children.setdefault(ppid, []).append(pid)
    return workers, children


def _memory_kib(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of `pid`, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _uptime_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        started_ticks = int(f.read().rsplit(") ", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        since_boot = float(f.read().split()[0])
    return since_boot - started_ticks / os.sysconf("SC_CLK_TCK")


def _running(pid: int) -> bool:
    """Alive and not a zombie (a worker's parent, if any, may not reap it at once)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False
