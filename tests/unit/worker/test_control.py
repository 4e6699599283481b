"""stop_workers: ends the workers of one socket dir by PID, and nothing else."""

import subprocess

from worker_process import running_worker

from cni_rkt.worker.control import stop_workers


def test_stops_the_worker_serving_the_directory_and_removes_its_socket(tmp_path):
    directory = str(tmp_path / "sockets")
    with running_worker(directory) as (proc, path):
        assert stop_workers(directory) == [proc.pid]
        assert proc.wait(timeout=30) == 0


def test_a_pid_file_naming_another_process_is_not_signalled(tmp_path):
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "worker-0.1.0-x.sock.pid").write_text(f"{bystander.pid}\n")
        assert stop_workers(str(tmp_path)) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
