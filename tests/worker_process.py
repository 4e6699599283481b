"""Start and end cni-rkt workers in tests and benchmarks, each on a private socket path.

A worker is ended by its PID (from the Popen, or the pid file a launcher's background
start leaves beside the socket), never by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

from processes import all_pids, holds_open, parent_of

from cni_rkt import __version__
from cni_rkt.launcher import import_roots
from cni_rkt.worker import client, identity
from cni_rkt.worker.control import stop_workers

READY_TIMEOUT = 60.0  # generous: the worker imports pyroute2 on a shared 2-core machine


def worker_socket(directory: str, interpreter: str = sys.executable) -> str:
    """The socket of the worker that launchers installed for `interpreter` use."""
    roots = import_roots()
    return identity.socket_path(directory, __version__, identity.install_id(interpreter, roots))


def wait_ready(path: str, proc: subprocess.Popen | None = None) -> None:
    """Until the worker at `path` accepts connections."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not _accepts(path):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no worker listening on {path}")
        time.sleep(0.02)


def _accepts(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


# The worker's bootstrap with its forks failing (EAGAIN, as under a pids limit) while a file exists.
_FAILING_FORKS_BOOTSTRAP = """
import errno, os, sys
sys.path[:0] = sys.argv[3:]
import cni_rkt.worker.server as server
real_fork_child = server.fork_child
def fork_child(*args, **kwargs):
    if os.path.exists({flag!r}):
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
    return real_fork_child(*args, **kwargs)
server.fork_child = fork_child
server.main(sys.argv[1], float(sys.argv[2]), sys.argv[3:])
"""


@contextmanager
def running_worker(directory: str, idle: float = 120.0, extra_roots: tuple[str, ...] = (),
                   interpreter: str = sys.executable, forks_fail_while: str = ""):
    """A worker on a private socket in `directory`; yields (Popen, socket path).

    `extra_roots` are appended to its import roots (which it watches for changes). While the
    file `forks_fail_while` exists, the worker's forks of children fail.
    """
    path = worker_socket(directory, interpreter)
    roots = [*import_roots(), *extra_roots]
    bootstrap = _FAILING_FORKS_BOOTSTRAP.format(flag=forks_fail_while) if forks_fail_while else client._BOOTSTRAP
    argv = [interpreter, "-IS", "-c", bootstrap, path, repr(idle), *roots]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_ready(path, proc)
        yield proc, path
    finally:
        end_process(proc.pid)
        proc.wait(timeout=30)


def end_process(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def end_background_workers(directory: str) -> list[int]:
    """End the workers launchers started in the background under `directory`; their PIDs."""
    return stop_workers(directory)


def request_key(version: str = __version__) -> bytes:
    """The key a launcher of this checkout sends (version, installation, package directory)."""
    import cni_rkt

    roots = import_roots()
    return identity.request_key(version, identity.install_id(sys.executable, roots), identity.tree_id(cni_rkt.__path__[0]))


def child_holding(parent: int, path: str, timeout: float = 30.0) -> int:
    """The PID of `parent`'s child that keeps `path` open (waits until there is one).

    A spare forked meanwhile holds the worker's copy for a moment before it closes it,
    so a child counts once it still holds `path` a little later.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holding = children_holding(parent, path)
        if holding:
            time.sleep(0.2)
            kept = holding & children_holding(parent, path)
            if len(kept) == 1:
                return kept.pop()
        time.sleep(0.02)
    raise AssertionError(f"no child of {parent} kept {path} open")


def wait_until_released(parent: int, child: int, path: str, timeout: float = 30.0) -> None:
    """Wait until `child` has let go of `path`: it ended, or it is back in its own context."""
    deadline = time.monotonic() + timeout
    while child in children_holding(parent, path):
        if time.monotonic() > deadline:
            raise AssertionError(f"child {child} still holds {path}")
        time.sleep(0.02)


def children_holding(parent: int, path: str) -> set[int]:
    return {pid for pid in all_pids() if parent_of(pid) == parent and holds_open(pid, path)}


def in_a_fork(action) -> str:
    """Run `action` in a forked child (reaped by PID); what it returned or raised, as text."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            try:
                text = f"returned {action()!r}"
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                text = f"{type(exc).__name__}: {exc}"
            os.write(write_end, text.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        text = f.read().decode()
    os.waitpid(pid, 0)
    return text


PR_CAPBSET_DROP = 24
CAP_NET_ADMIN = 12


def prctl(*args: int) -> None:
    """prctl(2) for a test process that confines itself (OSError on failure)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(*(ctypes.c_ulong(a) for a in args)) != 0:
        raise OSError(ctypes.get_errno(), "prctl")


def drop_net_admin_from_bounding_set() -> None:
    """Make this (root) process less privileged than a worker: what it execs lacks CAP_NET_ADMIN."""
    prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0)
