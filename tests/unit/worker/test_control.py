"""stop_workers: ends the workers of one socket dir by PID, and nothing else."""

import subprocess
import sys

from worker_process import running_worker

from cni_rkt.worker.control import stop_workers, worker_pids


def test_stops_the_worker_serving_the_directory_and_not_its_spare_children(tmp_path):
    directory = str(tmp_path / "sockets")
    with running_worker(directory) as (proc, _path):
        assert worker_pids(directory) == [proc.pid]
        assert stop_workers(directory) == [proc.pid]
        assert proc.wait(timeout=30) == 0
        assert worker_pids(directory) == []  # the spares went with it


def test_workers_of_other_directories_and_other_processes_are_left_alone(tmp_path):
    directory = str(tmp_path / "sockets")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"{directory}/w.sock"])
    try:
        with running_worker(str(tmp_path / "elsewhere")) as (proc, _path):
            assert stop_workers(directory) == []
            assert proc.poll() is None and bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
