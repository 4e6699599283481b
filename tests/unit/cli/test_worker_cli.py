"""`cni-rkt worker` when no worker runs: a clear word and status 3 (as `systemctl status`)."""

import json

import pytest

from cni_rkt.cli.main import main


def test_status_and_stop_without_a_worker(tmp_path, capsys):
    assert main(["worker", "status", "--socket-dir", str(tmp_path)]) == 3
    assert main(["worker", "stop", "--socket-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"no cni-rkt worker serves sockets in {tmp_path}\n" * 2
    assert main(["worker", "status", "--socket-dir", str(tmp_path), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["workers"] == []


def test_a_socket_dir_that_is_not_utf8_is_shown_escaped(capsys):
    assert main(["worker", "status", "--socket-dir", "/nonexistent/\udcff"]) == 3
    assert capsys.readouterr().out == "no cni-rkt worker serves sockets in /nonexistent/\\xff\n"


@pytest.mark.parametrize("wait", ["-1", "nan", "abc"])
def test_stop_refuses_a_wait_that_is_not_a_number_of_seconds(tmp_path, capsys, wait):
    """A negative or NaN --wait would not wait at all, then call a worker that is ending 'still running'."""
    with pytest.raises(SystemExit) as exited:
        main(["worker", "stop", "--socket-dir", str(tmp_path), "--wait", wait])
    assert exited.value.code == 2
    assert "argument --wait: invalid" in capsys.readouterr().err


@pytest.mark.parametrize("idle, plan", [
    (600.0, "without a request, it lets its children go after 60 s and ends after 600 s"),
    (float("inf"), "without a request, it keeps its children and never ends"),  # CNI_RKT_WORKER_IDLE=inf
])
def test_status_says_when_the_worker_rests_and_ends(monkeypatch, tmp_path, capsys, idle, plan):
    from cni_rkt.worker import control

    worker = control.WorkerInfo(pid=10, socket=str(tmp_path / "w.sock"), idle_seconds=idle, uptime_seconds=5.0,
                                resident_kib=2048, peak_resident_kib=4096, listening=True)
    monkeypatch.setattr(control, "describe_workers", lambda directory: [worker])
    assert main(["worker", "status", "--socket-dir", str(tmp_path)]) == 0
    assert f"  up 5 s; {plan}\n" in capsys.readouterr().out
