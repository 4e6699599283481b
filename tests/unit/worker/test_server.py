"""A real worker process on a private socket: who it serves, and when it goes away.

Every worker here is started by `running_worker`, which ends it by PID afterwards.
"""

import json
import os
import shutil
import signal
import socket
import sys
import threading
import time

import pytest
from worker_process import child_holding, request_key, running_worker, wait_until_released

from cni_rkt.protocol import runner
from cni_rkt.worker import admission, client, identity, server, warmup, wire

MISSING_NETNS = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_PATH": "/x"}
CONFIG = b'{"cniVersion":"1.0.0","name":"n"}'


@pytest.fixture
def worker(tmp_path):
    with running_worker(str(tmp_path / "sockets")) as (proc, path):
        yield proc, path


def test_worker_reply_equals_the_in_process_reply(worker):
    _proc, path = worker
    for environ, stdin in [(MISSING_NETNS, CONFIG), ({"CNI_COMMAND": "FOO"}, b"{}"), ({"CNI_COMMAND": "DEL"}, b"")]:
        assert client.request(path, request_key(), "bridge", environ, stdin) == runner.run("bridge", environ, stdin)


def test_request_of_another_version_is_refused_and_the_worker_stays(worker):
    proc, path = worker
    with pytest.raises(client.Declined, match="another version") as declined:
        client.request(path, request_key("0.0.9"), "bridge", MISSING_NETNS, CONFIG)
    assert not declined.value.start_another
    assert proc.poll() is None
    assert client.request(path, request_key(), "bridge", MISSING_NETNS, CONFIG)[1] == 1


def test_request_with_a_changed_code_stamp_makes_the_worker_retire(worker):
    proc, path = worker
    stale_key = request_key().rsplit(b"|", 1)[0] + b"|0.0.0"
    with pytest.raises(client.Declined, match="stale") as declined:
        client.request(path, stale_key, "bridge", MISSING_NETNS, CONFIG)
    assert declined.value.start_another
    assert proc.wait(timeout=30) == 0
    assert not os.path.exists(path) and not os.path.exists(path + ".pid")


def test_worker_retires_as_soon_as_its_code_changes_on_disk(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with running_worker(str(tmp_path / "sockets"), extra_roots=(str(root),)) as (proc, path):
        assert proc.poll() is None  # listening
        (root / "newly_installed.py").write_text("")
        assert proc.wait(timeout=30) == 0  # without waiting for a request
        assert not os.path.exists(path) and not os.path.exists(path + ".pid")


def test_worker_retires_as_soon_as_its_interpreter_is_replaced(tmp_path):
    """A security update of the interpreter, in place: the old one must not keep serving."""
    interpreter = tmp_path / "bin" / "python3.11"
    interpreter.parent.mkdir()
    shutil.copy2(os.path.realpath(sys.executable), interpreter)  # finds its stdlib by its build prefix
    with running_worker(str(tmp_path / "sockets"), interpreter=str(interpreter)) as (proc, path):
        assert proc.poll() is None  # listening
        shutil.copy2(interpreter, tmp_path / "bin" / "update")
        os.replace(tmp_path / "bin" / "update", interpreter)  # as dpkg installs a new version
        assert proc.wait(timeout=30) == 0  # without waiting for a request
        assert not os.path.exists(path) and not os.path.exists(path + ".pid")


def test_unknown_plugin_is_refused(worker):
    _proc, path = worker
    with pytest.raises(client.Declined, match="unknown plugin"):
        client.request(path, request_key(), "ptp", MISSING_NETNS, CONFIG)


def test_worker_exits_when_idle_and_removes_its_socket(tmp_path):
    with running_worker(str(tmp_path / "sockets"), idle=0.5) as (proc, path):
        assert proc.wait(timeout=30) == 0
        assert not os.path.exists(path) and not os.path.exists(path + ".pid")


def test_worker_rests_after_a_tenth_of_idle_sleeps_and_serves_the_next_caller(tmp_path):
    """A node with a pod now and then: the worker lets its children go (their memory is most
    of its own) but stays, asleep, and the next caller is served by a child forked for it."""
    idle = 20.0
    rest = idle * identity.REST_FRACTION
    with running_worker(str(tmp_path / "sockets"), idle=idle) as (proc, path):
        wait_for_spares(proc.pid)
        before = time.monotonic()  # the request's activity comes after this: no rest before `rest` from here
        assert client.request(path, request_key(), "bridge", MISSING_NETNS, CONFIG)[1] == 1
        after = time.monotonic()
        while _children(proc.pid):
            assert time.monotonic() < after + rest + 3.0, "the idle worker kept its children"
            time.sleep(0.02)
        assert time.monotonic() >= before + rest, "the worker rested before a tenth of its idle time"
        assert proc.poll() is None and os.path.exists(path)  # resting, not retired
        used = _cpu_seconds(proc.pid)
        time.sleep(1.0)
        assert _cpu_seconds(proc.pid) - used < 0.05, "a resting worker keeps waking up"
        assert client.request(path, request_key(), "bridge", MISSING_NETNS, CONFIG) == runner.run(
            "bridge", MISSING_NETNS, CONFIG)
        wait_for_spares(proc.pid)  # a caller came: spares again for the next ones


@pytest.mark.parametrize("when", ["from its start", "once resting"])
def test_a_worker_that_cannot_fork_refuses_the_caller_and_lives_on(tmp_path, when):
    """Out of processes (a pids limit): the caller is refused before "accepted", so it runs the
    request itself instead of losing it, and the worker serves again once forks work."""
    no_forks = tmp_path / "no-forks"
    if when == "from its start":
        no_forks.touch()
    with running_worker(str(tmp_path / "sockets"), idle=2.0, forks_fail_while=str(no_forks)) as (proc, path):
        if when == "once resting":
            wait_for_spares(proc.pid)
            no_forks.touch()
            while _children(proc.pid):
                time.sleep(0.02)
        with pytest.raises(client.Declined, match="cannot start a process") as declined:
            client.request(path, request_key(), "bridge", MISSING_NETNS, CONFIG)
        assert not declined.value.start_another  # forking fails for a new worker too
        assert proc.poll() is None
        no_forks.unlink()
        assert client.request(path, request_key(), "bridge", MISSING_NETNS, CONFIG)[1] == 1


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@pytest.mark.parametrize("idle", [float("inf"), 30 * 86400.0])
def test_a_worker_told_to_wait_very_long_keeps_serving_once_it_waits(tmp_path, idle):
    """CNI_RKT_WORKER_IDLE=inf, or a month: the worker waits on its socket, it does not crash."""
    with running_worker(str(tmp_path / "sockets"), idle=idle) as (proc, path):
        wait_for_spares(proc.pid)  # forked: from here on it waits for a caller, up to `idle`
        assert client.request(path, request_key(), "bridge", MISSING_NETNS, CONFIG)[1] == 1
        assert proc.poll() is None


def wait_for_spares(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_children(pid)) < server.SPARE_CHILDREN:
        assert time.monotonic() < deadline, f"worker {pid} forked no spares"
        time.sleep(0.02)


def _children(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def test_a_caller_trickling_its_request_does_not_hold_up_the_others(worker):
    """Each byte within the read timeout, never the whole frame: the worker gives up on
    that caller in time for the next one to be served, not refused by its own timeout."""
    _proc, path = worker
    stop = threading.Event()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
        slow.connect(path)

        def trickle():
            for byte in wire.encode_fields([b"x" * 1000]):  # would take minutes
                if stop.wait(0.2):
                    return
                try:
                    slow.send(bytes([byte]))
                except OSError:
                    return  # the worker hung up on us

        sender = threading.Thread(target=trickle)
        sender.start()
        try:
            assert client.request(path, request_key(), "bridge", MISSING_NETNS, CONFIG)[1] == 1
        finally:
            stop.set()
            sender.join()


def test_a_caller_without_proc_runs_in_process_and_starts_no_worker(worker, monkeypatch):
    """Say in a chroot without /proc: no worker can serve it, so each exec starting one
    (to wait for the lock and exit) would only cost it time."""

    def no_proc():
        raise FileNotFoundError(2, "No such file or directory", "/proc/self/ns/net")

    monkeypatch.setattr(client, "_namespace_fds", no_proc)
    with pytest.raises(client.Declined) as declined:
        client.request(worker[1], request_key(), "bridge", MISSING_NETNS, CONFIG)
    assert not declined.value.start_another


def test_no_worker_listening_is_declined_and_asks_for_one(tmp_path):
    with pytest.raises(client.Declined) as declined:
        client.request(str(tmp_path / "none.sock"), request_key(), "bridge", MISSING_NETNS, CONFIG)
    assert declined.value.start_another


def test_refusal_names_the_reason_for_other_users_and_hidden_callers():
    pidfd = os.pidfd_open(os.getpid())
    try:
        assert admission.peer_refusal(os.getpid(), os.geteuid(), pidfd) == ""
        assert "uid 12345 may not use" in admission.peer_refusal(os.getpid(), 12345, pidfd)
        assert "another pid namespace" in admission.peer_refusal(0, os.geteuid(), None)
    finally:
        os.close(pidfd)


def test_the_caller_is_known_by_a_handle_on_the_process_that_connected():
    """Not by its PID alone, which another process may have by the time it is looked at."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        pidfd = admission.caller_pidfd(ours, os.getpid())
    try:
        assert os.get_inheritable(pidfd) is False  # a child forked later must not hold it
        assert admission.peer_refusal(os.getpid(), os.geteuid(), pidfd) == ""
    finally:
        os.close(pidfd)
    assert "gone" in admission.peer_refusal(os.getpid(), os.geteuid(), None)


def test_a_caller_that_exited_is_not_served_even_if_its_pid_is_readable():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    pidfd = os.pidfd_open(pid)
    try:
        os.waitpid(pid, 0)  # its PID is free for any process now; ours still reads as "a caller"
        assert "exited" in admission.peer_refusal(os.getpid(), os.geteuid(), pidfd)
    finally:
        os.close(pidfd)


def test_socket_directory_open_to_others_is_not_used(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert server.take_lock(str(shared / "w.sock")) is None


@pytest.mark.parametrize("parent_mode", [0o777, 0o775])
def test_socket_directory_inside_a_directory_others_may_change_is_not_used(tmp_path, parent_mode):
    """Whoever may rename entries of a directory above the socket's could swap the socket
    directory for one of theirs after the check (the worker then writes its pid file,
    lock and socket, and chmods the socket, wherever they point)."""
    parent = tmp_path / "parent"
    (parent / "sockets").mkdir(parents=True, mode=0o700)
    parent.chmod(parent_mode)
    assert server.take_lock(str(parent / "sockets" / "w.sock")) is None


def test_socket_directory_inside_a_sticky_directory_is_used(tmp_path):
    """As under /tmp: others may add entries there but not rename or remove ours."""
    parent = tmp_path / "sticky"
    (parent / "sockets").mkdir(parents=True, mode=0o700)
    parent.chmod(0o1777)
    lock = server.take_lock(str(parent / "sockets" / "w.sock"))
    assert lock is not None
    os.close(lock)


def test_socket_directory_reached_through_a_symlink_into_an_open_directory_is_not_used(tmp_path):
    (tmp_path / "open" / "sockets").mkdir(parents=True, mode=0o700)
    (tmp_path / "open").chmod(0o777)
    (tmp_path / "link").symlink_to(tmp_path / "open")
    assert server.take_lock(str(tmp_path / "link" / "sockets" / "w.sock")) is None


def test_error_json_from_the_worker_is_the_spec_shape(worker):
    _proc, path = worker
    out, code = client.request(path, request_key(), "bridge", MISSING_NETNS, CONFIG)
    assert code == 1
    assert json.loads(out) == {"cniVersion": "1.0.0", "code": 4, "msg": "required env variables [CNI_NETNS] missing"}


def test_a_module_that_fails_to_import_does_not_stop_the_preload(monkeypatch, tmp_path):
    package = tmp_path / "brokenpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text("VALUE = 1\n")
    (package / "bad.py").write_text("raise ImportError('half-installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(warmup, "THIRD_PARTY", ())
    monkeypatch.setattr(warmup, "PLUGIN_PACKAGES", ("brokenpkg",))
    warmup.preload()
    assert "brokenpkg.good" in sys.modules and "brokenpkg.bad" not in sys.modules


@pytest.mark.parametrize(
    "theirs, reason",
    [
        (b"0.1.0|abc|1.2.3", ""),
        (b"0.1.0|abc|1.2.4", "stale: the code changed since this worker started"),
        (b"0.1.1|abc|1.2.3", "the worker belongs to another version or installation"),
        (b"0.1.0|xyz|1.2.3", "the worker belongs to another version or installation"),
    ],
)
def test_request_key_decides_between_served_stale_and_foreign(theirs, reason):
    assert admission.key_refusal(b"0.1.0|abc|1.2.3", theirs) == reason


def accepted_conversation(path: str, environ: dict, stdin: bytes) -> socket.socket:
    """A client's conversation up to "accepted" (the next step would be its "go")."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    fds = client._namespace_fds()
    try:
        client._send_request(sock, request_key(), "host-local", environ, stdin, fds)
    finally:
        for fd in fds:
            if fd > 2:  # not our stderr
                os.close(fd)
    assert wire.read_frame(sock) == [b"accepted"]
    return sock


@pytest.fixture
def host_local_call(tmp_path, monkeypatch):
    """(environ, stdin, reservations()) of a host-local ADD; our cwd is a directory only
    the child serving that ADD holds open, to find that child by."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    data_dir = tmp_path / "data"
    stdin = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "host-local",
                        "ipam": {"type": "host-local", "subnet": "10.46.0.0/29", "dataDir": str(data_dir)}}).encode()
    environ = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/proc/self/ns/net",
               "CNI_IFNAME": "eth0", "CNI_PATH": "/x"}
    return environ, stdin, lambda: sorted(p.name for p in (data_dir / "n").glob("10.*"))


def test_a_request_never_confirmed_never_runs(worker, host_local_call):
    proc, path = worker
    environ, stdin, reservations = host_local_call
    with accepted_conversation(path, environ, stdin):
        child = child_holding(proc.pid, os.getcwd())
    # The caller gave up instead of saying "go" (it runs in-process instead): the child
    # lets go of the request without running anything.
    wait_until_released(proc.pid, child, os.getcwd())
    assert reservations() == []
    assert client.request(path, request_key(), "host-local", environ, stdin)[1] == 0
    assert reservations() == ["10.46.0.2"]


def test_a_child_lost_before_the_go_tells_the_caller_nothing_changed(worker, host_local_call):
    proc, path = worker
    environ, stdin, reservations = host_local_call
    with accepted_conversation(path, environ, stdin) as sock:
        os.kill(child_holding(proc.pid, os.getcwd()), signal.SIGKILL)
        try:
            sock.sendall(wire.encode_fields([b"go"]))
        except BrokenPipeError:
            pass  # the worker answered and hung up first: as the client does, read its answer
        kind, code, stdout = wire.read_frame(sock)
    assert (kind, code) == (b"result", b"1")
    assert "before running it; nothing was changed" in json.loads(stdout)["msg"]
    assert reservations() == []


def test_the_child_replies_to_the_caller_even_if_the_worker_dies(worker, host_local_call):
    proc, path = worker
    environ, stdin, reservations = host_local_call
    with accepted_conversation(path, environ, stdin) as sock:
        child_holding(proc.pid, os.getcwd())  # it has the request
        proc.kill()
        proc.wait()
        sock.sendall(wire.encode_fields([b"go"]))
        kind, code, stdout = wire.read_frame(sock)
    assert (kind, code) == (b"result", b"0")
    assert json.loads(stdout)["ips"][0]["address"] == "10.46.0.2/29"
    assert reservations() == ["10.46.0.2"]
