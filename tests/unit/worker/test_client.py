"""The launcher as a runtime execs it: VERSION, the in-process fallback, the switch.

Workers a launcher starts in the background are ended by the PID in their pid file.
"""

import json
import os
import subprocess
import sys

import pytest
from worker_process import end_background_workers, wait_ready, worker_socket

from cni_rkt.launcher import install_launchers, render_launcher
from cni_rkt.protocol import runner

ENV = {"PATH": "/usr/bin:/bin", "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_PATH": "/x"}
CONFIG = b'{"cniVersion":"0.4.0","name":"n"}'


@pytest.fixture
def sockets(tmp_path):
    directory = str(tmp_path / "sockets")
    try:
        yield directory
    finally:
        end_background_workers(directory)


def run_launcher(path, env, stdin=b""):
    return subprocess.run([path], input=stdin, env=env, capture_output=True, timeout=120, check=False)


def test_version_is_answered_before_any_import(tmp_path):
    launcher = tmp_path / "bridge"
    launcher.write_text(render_launcher("bridge", sys.executable, ["/nonexistent"]))
    launcher.chmod(0o755)
    done = run_launcher(str(launcher), {"CNI_COMMAND": "VERSION"}, b"ignored")
    assert (done.stdout, done.returncode, done.stderr) == (runner.version_reply(), 0, b"")


def test_without_a_worker_the_launcher_runs_in_process_and_starts_one(tmp_path, sockets):
    (bridge,) = install_launchers(str(tmp_path / "bin"), plugins=("bridge",), worker_socket_dir=sockets)
    first = run_launcher(bridge, ENV, CONFIG)
    assert (first.stdout, first.returncode) == runner.run("bridge", ENV, CONFIG)
    wait_ready(worker_socket(sockets))
    second = run_launcher(bridge, ENV, CONFIG)
    assert (second.stdout, second.returncode) == (first.stdout, first.returncode)
    assert json.loads(second.stdout)["code"] == 4


@pytest.mark.parametrize("switch", [{"CNI_RKT_WORKER": "0"}, {"CNI_COMMAND": "VERSION"}])
def test_switched_off_or_version_starts_no_worker(tmp_path, sockets, switch):
    (bridge,) = install_launchers(str(tmp_path / "bin"), plugins=("bridge",), worker_socket_dir=sockets)
    done = run_launcher(bridge, dict(ENV, **switch), CONFIG)
    assert done.returncode in (0, 1) and done.stdout
    assert not os.path.exists(sockets)


def test_environment_overrides_the_socket_dir_rendered_into_the_launcher(tmp_path, sockets):
    (bridge,) = install_launchers(str(tmp_path / "bin"), plugins=("bridge",), worker_socket_dir="/nonexistent/dir")
    run_launcher(bridge, dict(ENV, CNI_RKT_WORKER_SOCKET_DIR=sockets), CONFIG)
    wait_ready(worker_socket(sockets))


def test_a_worker_that_answered_and_hung_up_before_the_go_is_still_heard(tmp_path, monkeypatch):
    """The worker replies for a child that died before the caller's "go" ("nothing was
    changed") and closes; the client's "go" then meets a closed socket, and the client must
    still read that reply instead of reporting the pod's state as unknown."""
    import socket
    import threading

    from cni_rkt.worker import client, wire

    path = str(tmp_path / "fake.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    hung_up = threading.Event()
    answer = b'{"code": 999, "msg": "... before running it; nothing was changed"}'

    def fake_worker():
        conn, _ = listener.accept()
        wire.receive_frame_with_fds(conn)
        conn.sendall(wire.encode_fields([b"accepted"]) + wire.encode_fields([b"result", b"1", answer]))
        conn.close()
        hung_up.set()

    real_read_frame = wire.read_frame

    def read_after_the_hang_up(sock, *args, **kwargs):
        if threading.current_thread() is not server:  # the client: its "go" must meet a closed socket
            hung_up.wait(10)
        return real_read_frame(sock, *args, **kwargs)

    monkeypatch.setattr(wire, "read_frame", read_after_the_hang_up)
    server = threading.Thread(target=fake_worker)
    server.start()
    try:
        assert client.request(path, b"key", "host-local", {"CNI_COMMAND": "ADD"}, b"{}") == (answer, 1)
    finally:
        server.join()
        listener.close()
