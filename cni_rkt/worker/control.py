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
_FLAGS_ARGS, _CODE_ARG, _SOCKET_ARG, _IDLE_ARG = slice(1, 3), 3, 4, 5


@dataclass
class WorkerInfo:
    pid: int
    socket: str
    idle_seconds: float
    uptime_seconds: float
    resident_kib: int
    peak_resident_kib: int
    listening: bool  # it holds its socket's lock: it has not retired (idle, stopped, code changed)
    children: dict[int, int] = field(default_factory=dict)  # pid -> resident KiB


def stop_workers(directory: str, wait_seconds: float = 30.0) -> list[int]:
    """SIGTERM every worker serving a socket in `directory` that we may signal; wait for
    them; return the PIDs signalled (another user's worker is left alone)."""
    signalled = [pid for pid in worker_pids(directory) if _terminate(pid, directory)]
    deadline = time.monotonic() + wait_seconds
    for pid in signalled:
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    return signalled


def _terminate(pid: int, directory: str) -> bool:
    """SIGTERM through a pidfd, after checking that the process it names is still that worker:
    the PID may have been recycled since the scan."""
    try:
        pidfd = os.pidfd_open(pid)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        if not _is_worker_argv(_argv(pid), _inside(directory)):
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        return True
    except (OSError, ValueError):  # gone, or not ours to signal
        return False
    finally:
        os.close(pidfd)


def worker_pids(directory: str) -> list[int]:
    """The workers (not their children) whose socket is in `directory`."""
    return sorted(_workers_and_children(directory)[0])


def describe_workers(directory: str) -> list[WorkerInfo]:
    """What each worker serving a socket in `directory` is, from /proc (a process that
    ends while being read is left out)."""
    workers, children = _workers_and_children(directory)
    described = []
    for pid, argv in sorted(workers.items()):
        socket_path = os.fsdecode(argv[_SOCKET_ARG])
        try:
            resident, peak = _memory_kib(pid)
            info = WorkerInfo(pid=pid, socket=socket_path, idle_seconds=float(argv[_IDLE_ARG]),
                              uptime_seconds=_uptime_seconds(pid), resident_kib=resident,
                              peak_resident_kib=peak, listening=_holds_lock(pid, socket_path + ".lock"))
        except (OSError, ValueError):
            continue
        for child in children.get(pid, ()):
            try:
                info.children[child] = _memory_kib(child)[0]
            except (OSError, ValueError):
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


def _inside(directory: str) -> bytes:
    # Resolved, so that /var/run/cni-rkt finds the workers of /run/cni-rkt (Debian's symlink).
    return os.fsencode(os.path.realpath(directory))


def _argv(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def _is_worker_argv(argv: list[bytes], directory: bytes) -> bool:
    """The bootstrap's command line (of any version), for a socket directly in `directory`."""
    return (
        len(argv) > _IDLE_ARG
        and argv[_FLAGS_ARGS] == [b"-IS", b"-c"]
        and _SERVER_MODULE in argv[_CODE_ARG]
        and os.path.realpath(os.path.dirname(argv[_SOCKET_ARG])) == directory  # as _inside spells it
    )


def _workers_and_children(directory: str) -> tuple[dict[int, list[bytes]], dict[int, list[int]]]:
    """{worker pid: its argv} and {worker pid: its children's pids} (children run the same argv)."""
    inside = _inside(directory)
    found: dict[int, tuple[int, str, list[bytes]]] = {}  # pid -> (parent pid, name, argv)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            argv = _argv(int(name))
            if not _is_worker_argv(argv, inside):
                continue
            with open(f"/proc/{name}/stat") as f:
                command, fields = f.read().split(" (", 1)[1].rsplit(") ", 1)
            found[int(name)] = (int(fields.split()[1]), command, argv)
        except (OSError, IndexError, ValueError):
            continue
    # A child: named so, or (forked a moment ago, not named yet) the child of a match.
    workers = {pid: argv for pid, (ppid, command, argv) in found.items() if command != CHILD_NAME and ppid not in found}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _name, _args) in sorted(found.items()):
        if ppid in workers:
            children.setdefault(ppid, []).append(pid)
    return workers, children


def _memory_kib(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of `pid`, in KiB (ValueError for a zombie, which has none)."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))
    if len(fields) != 2:
        raise ValueError(f"process {pid} has no memory left")
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _uptime_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        started_ticks = int(f.read().rsplit(") ", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        since_boot = float(f.read().split()[0])
    return since_boot - started_ticks / os.sysconf("SC_CLK_TCK")


def _holds_lock(pid: int, path: str) -> bool:
    """Whether `pid` holds the flock on `path` (/proc/locks: ... FLOCK ... PID MAJ:MIN:INODE ...)."""
    try:
        inode = os.stat(path).st_ino
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[4] == str(pid) and fields[5].endswith(f":{inode}"):
            return True
    return False


def _running(pid: int) -> bool:
    """Alive and not a zombie (a worker's parent, if any, may not reap it at once)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False
