"""`cni-rkt worker status|stop` against a real worker on a private socket dir (ended by PID
by running_worker also when a test fails)."""

from __future__ import annotations

import json
import os
import time

from conftest import needs_root
from worker_process import running_worker

from cni_rkt.cli.main import main


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
        assert f"worker {proc.pid}: listening on {path}" in capsys.readouterr().out

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
