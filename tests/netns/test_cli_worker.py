"""`cni-rkt worker status|stop` against a real worker on a private socket dir (ended by PID
by running_worker also when a test fails)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from conftest import needs_root
from worker_process import running_worker

from cni_rkt.cli.main import main
from cni_rkt.launcher import import_roots
from cni_rkt.worker import control


def _status(capsys, sockets: str) -> tuple[int, dict]:
    code = main(["worker", "status", "--socket-dir", sockets, "--json"])
    return code, json.loads(capsys.readouterr().out)


@needs_root
def test_status_shows_the_worker_and_stop_ends_it(tmp_path, capsys):
    sockets = str(tmp_path / "sockets")
    with running_worker(sockets, idle=120.0) as (proc, path):
        deadline = time.monotonic() + 30
        code, status = _status(capsys, sockets)
        while not status["workers"][0]["children"] and time.monotonic() < deadline:  # spares fork when idle
            time.sleep(0.1)
            code, status = _status(capsys, sockets)
        (worker,) = status["workers"]
        assert code == 0 and (worker["pid"], worker["socket"], worker["listening"]) == (proc.pid, path, True)
        assert worker["idleSeconds"] == 120.0 and worker["residentKiB"] > 0
        assert worker["children"] and all(os.readlink(f"/proc/{c['pid']}/exe") for c in worker["children"])
        assert main(["worker", "status", "--socket-dir", sockets]) == 0
        shown = capsys.readouterr().out
        assert f"worker {proc.pid}: listening on {path}" in shown
        assert "it lets its children go after 12 s and ends after 120 s" in shown

        assert main(["worker", "stop", "--socket-dir", sockets]) == 0
        assert capsys.readouterr().out == f"worker {proc.pid}: ended\n"
        assert proc.wait(timeout=30) is not None and not os.path.exists(path)
        deadline = time.monotonic() + 10  # its spares end with it (an orphaned one would be listed)
        while _status(capsys, sockets)[0] != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(capsys, sockets) == (3, {"socketDir": sockets, "switchedOff": _switched_off(), "workers": []})


def _switched_off() -> bool:
    from cni_rkt.worker.identity import NO_WORKER_FLAG

    return os.path.exists(NO_WORKER_FLAG)


@needs_root
def test_names_in_ps_and_an_orphaned_child_is_not_stopped(tmp_path, capsys):
    """A child still serving a caller after its worker died must finish, not be interrupted."""
    sockets = str(tmp_path / "sockets")
    with running_worker(sockets) as (proc, path):
        deadline = time.monotonic() + 30
        while not control.describe_workers(sockets)[0].children and time.monotonic() < deadline:
            time.sleep(0.1)
        child = next(iter(control.describe_workers(sockets)[0].children))
        assert _comm(proc.pid) == control.WORKER_NAME and _comm(child) == control.CHILD_NAME
    # a worker's command line, named as its child, its worker gone
    orphan = subprocess.Popen([sys.executable, "-IS", "-c", ORPHAN, path, "120", *import_roots()])
    try:
        deadline = time.monotonic() + 30
        while _comm(orphan.pid) != control.CHILD_NAME and time.monotonic() < deadline:
            time.sleep(0.02)
        assert control.describe_workers(sockets) == [] and control.worker_pids(sockets) == []
        assert main(["worker", "stop", "--socket-dir", sockets, "--wait", "1"]) == 0
        assert orphan.poll() is None  # not signalled
    finally:
        orphan.kill()
        orphan.wait()


ORPHAN = (
    "import sys, time\n"
    "sys.path[:0] = sys.argv[3:]\n"
    "from cni_rkt.worker.control import CHILD_NAME, name_this_process  # as cni_rkt.worker.server's child\n"
    "name_this_process(CHILD_NAME)\n"
    "time.sleep(60)\n"
)


@needs_root
def test_only_workers_of_that_socket_dir_are_found_and_a_vanished_child_is_skipped(tmp_path, monkeypatch):
    sockets = str(tmp_path / "sockets")
    with running_worker(sockets) as (proc, _path):
        # the interpreter's and the import roots' directories are in its command line too
        for elsewhere in (os.path.dirname(sys.executable), *import_roots(), str(tmp_path)):
            assert control.worker_pids(elsewhere) == []
        zombie = os.fork()
        if zombie == 0:
            os._exit(0)
        try:
            time.sleep(0.2)  # it exited and is not reaped: no memory to read
            real = control._workers_and_children
            monkeypatch.setattr(control, "_workers_and_children",
                                lambda d: (real(d)[0], {proc.pid: [zombie, 2 ** 22 + 1]}))  # and one long gone
            (worker,) = control.describe_workers(sockets)
            assert worker.pid == proc.pid and worker.children == {} and worker.listening
        finally:
            os.waitpid(zombie, 0)


@needs_root
def test_stop_leaves_another_users_worker_alone_and_says_so(tmp_path):
    sockets = str(tmp_path / "sockets")
    with running_worker(sockets) as (proc, _path):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # as nobody, with everything already imported
            code = 2
            try:
                sys.stdout = open(write_end, "w")  # pytest's capture of the parent is no use here
                os.setgid(65534)
                os.setuid(65534)
                code = main(["worker", "stop", "--socket-dir", sockets, "--wait", "1"])
            finally:
                sys.stdout.flush()
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end) as out:
            said = out.read()
        _, status = os.waitpid(pid, 0)
        assert (os.waitstatus_to_exitcode(status), said) == (1, f"worker {proc.pid}: not stopped: not ours to signal\n")
        assert proc.poll() is None


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


@needs_root
def test_a_socket_dir_named_through_a_symlink_finds_the_worker(tmp_path, capsys):
    """As /var/run/cni-rkt is /run/cni-rkt on Debian: either spelling must show and stop the worker."""
    sockets = str(tmp_path / "sockets")
    alias = str(tmp_path / "alias")
    with running_worker(sockets) as (proc, path):
        os.symlink(sockets, alias)
        code, status = _status(capsys, alias)
        assert (code, [w["pid"] for w in status["workers"]]) == (0, [proc.pid])
        assert main(["worker", "stop", "--socket-dir", alias]) == 0
        assert capsys.readouterr().out == f"worker {proc.pid}: ended\n"
        assert proc.wait(timeout=30) is not None
