"""The pre-loaded worker against the in-process path, as a runtime execs our plugins.

Each plugin run happens inside a sandbox host netns. Every worker a test starts has a
private socket dir and is ended by PID (running_worker), also when the test fails.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import pytest
from conftest import needs_root
from plugin_calls import REPO_ROOT, cni_env
from worker_process import child_holding, children_holding, in_a_fork, running_worker

from cni_rkt.launcher import install_launchers
from cni_rkt.worker import client

NETWORK = "wk"
PR_SET_DUMPABLE = 4
TESTS_DIR = os.path.join(REPO_ROOT, "tests")
# client.request run inside the sandbox: proves a reply came from the worker, never a fallback.
VIA_WORKER = (
    "import os, sys\n"
    "sys.path[:0] = sys.argv[3:]\n"
    "from worker_process import request_key\n"
    "from cni_rkt.worker import client\n"
    "try:\n"
    "    out, code = client.request(sys.argv[1], request_key(), sys.argv[2], dict(os.environ), sys.stdin.buffer.read())\n"
    "except client.Declined as declined:\n"
    "    sys.exit(f'DECLINED: {declined}')\n"
    "sys.stdout.buffer.write(out)\n"
    "sys.exit(code)\n"
)


def ipam_config(data_dir: str, subnet: str = "10.44.0.0/29", version: str = "1.0.0") -> dict:
    return {"cniVersion": version, "name": NETWORK, "type": "bridge",
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": data_dir}}


class Paths:
    """The ways one invocation can run: in-process launcher, launcher + worker, worker alone."""

    def __init__(self, sandbox, bin_dir: str, socket_path: str) -> None:
        self.sandbox = sandbox
        self.bin_dir = bin_dir
        self.socket_path = socket_path

    def run(self, how: str, plugin: str, env: dict, stdin: bytes) -> tuple[bytes, int]:
        if how == "in-process":
            done = self.sandbox.run([os.path.join(self.bin_dir, plugin)], env=dict(env, CNI_RKT_WORKER="0"), stdin=stdin)
        elif how == "launcher":
            done = self.sandbox.run([os.path.join(self.bin_dir, plugin)], env=env, stdin=stdin)
        else:
            argv = [sys.executable, "-c", VIA_WORKER, self.socket_path, plugin, REPO_ROOT, TESTS_DIR]
            done = self.sandbox.run(argv, env=env, stdin=stdin)
            assert b"DECLINED" not in done.stderr, done.stderr.decode()
        return done.stdout, done.returncode


@pytest.fixture
def paths(sandbox, tmp_path):
    sockets = str(tmp_path / "sockets")
    bin_dir = str(tmp_path / "bin")
    install_launchers(bin_dir, worker_socket_dir=sockets)
    with running_worker(sockets) as (_proc, socket_path):
        yield Paths(sandbox, bin_dir, socket_path)


def files_of(data_dir: str) -> dict[str, str]:
    """The network directory as host-local's users see it: file names and contents."""
    network = os.path.join(data_dir, NETWORK)
    if not os.path.isdir(network):
        return {}
    return {name: open(os.path.join(network, name), errors="replace").read() for name in sorted(os.listdir(network))}


def host_local_session(paths: Paths, how: str, data_dir: str, pod: str) -> list[tuple[bytes, int]]:
    """ADD, CHECK, requested IP, duplicates, exhaustion, DEL twice and bad input, in order."""
    config = ipam_config(data_dir)
    stdin = json.dumps(config).encode()
    replies = []

    def call(command: str, container: str, body: bytes = stdin, **extra: str) -> bytes:
        env = cni_env(command, container, pod, cni_path=paths.bin_dir, **extra)
        replies.append(paths.run(how, "host-local", env, body))
        return replies[-1][0]

    added = call("ADD", "c1")
    call("CHECK", "c1", json.dumps(dict(config, prevResult=json.loads(added))).encode())
    call("ADD", "c2", CNI_ARGS="IgnoreUnknown=1;IP=10.44.0.5")
    call("ADD", "c2")  # the same container and ifname again
    for n in range(3, 8):  # a /29 runs out
        call("ADD", f"c{n}")
    call("DEL", "c1")
    call("DEL", "c1")
    call("ADD", "c9", json.dumps(ipam_config(data_dir, subnet="10.44.0.1/29")).encode())  # host bits
    call("ADD", "c9", json.dumps(ipam_config(data_dir, version="9.9.9")).encode())
    call("ADD", "c9", b"{not json")
    replies.append(paths.run(how, "host-local", {"CNI_COMMAND": "ADD", "PATH": "/usr/bin:/bin"}, stdin))
    return replies


@needs_root
def test_worker_and_in_process_give_identical_results_and_files(paths, sandbox, tmp_path):
    pod = sandbox.pod()
    outcomes = {}
    for how in ("in-process", "launcher", "worker"):
        data_dir = str(tmp_path / f"data-{how}")
        outcomes[how] = (host_local_session(paths, how, data_dir, pod), files_of(data_dir))
    assert outcomes["worker"] == outcomes["in-process"]
    assert outcomes["launcher"] == outcomes["in-process"]
    replies, files = outcomes["in-process"]
    assert [code for _, code in replies].count(0) >= 6 and files  # the session did real work


@needs_root
def test_killed_request_process_gives_a_clear_error_and_adds_nothing(paths, sandbox, tmp_path):
    """kill -9 of the child serving ADD: the caller gets an error and DEL has undone the ADD."""
    data_dir = str(tmp_path / "data")
    pod = sandbox.pod()
    stdin = json.dumps(ipam_config(data_dir)).encode()
    env = cni_env("ADD", "warm", pod, cni_path=paths.bin_dir)
    assert paths.run("worker", "host-local", env, stdin)[1] == 0
    assert paths.run("worker", "host-local", dict(env, CNI_COMMAND="DEL"), stdin)[1] == 0
    before = files_of(data_dir)
    killed = add_killed_while_waiting(paths, "host-local", stdin, os.path.join(data_dir, NETWORK, "lock"), pod)
    assert killed.returncode == 1, killed.stderr
    reply = json.loads(killed.stdout)
    assert reply["code"] == 999
    assert "killed by signal 9" in reply["msg"] and "DEL ran and removed what it had set up" in reply["msg"]
    assert files_of(data_dir) == before


@dataclass
class Killed:
    stdout: bytes
    stderr: bytes
    returncode: int
    host_at_kill: dict


def add_killed_while_waiting(paths: Paths, plugin: str, stdin: bytes, lock_path: str, pod: str,
                             data_dir: str = "") -> Killed:
    """Exec `plugin` ADD through the worker while we hold host-local's lock, so that the
    child serving it waits there; kill -9 that child, release the lock, await the reply."""
    worker_pid = int(open(paths.socket_path + ".pid").read())
    with open(lock_path) as lock, tempfile.TemporaryFile() as config:
        config.write(stdin)
        config.seek(0)
        fcntl.flock(lock, fcntl.LOCK_EX)
        argv = ["ip", "netns", "exec", paths.sandbox.host, os.path.join(paths.bin_dir, plugin)]
        caller = subprocess.Popen(argv, env=cni_env("ADD", "doomed", pod, cni_path=paths.bin_dir),
                                  stdin=config, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            child = child_holding(worker_pid, lock_path)
            host_at_kill = paths.sandbox.snapshot((data_dir,) if data_dir else ())
            os.kill(child, signal.SIGKILL)
            fcntl.flock(lock, fcntl.LOCK_UN)
            stdout, stderr = caller.communicate(timeout=60)
        finally:
            if caller.poll() is None:
                caller.kill()
                caller.wait()
    return Killed(stdout, stderr, caller.returncode, host_at_kill)


@needs_root
def test_worker_refuses_a_caller_of_another_uid(tmp_path):
    """A root worker serves root only: `nobody` is refused (and would run in-process)."""
    sockets = tempfile.mkdtemp(prefix="cni-rkt-uid-")  # under /tmp: `nobody` may reach it
    try:
        with running_worker(os.path.join(sockets, "s")) as (proc, path):
            os.chmod(sockets, 0o755)
            os.chmod(os.path.dirname(path), 0o755)
            os.chmod(path, 0o666)
            verdict = as_nobody(lambda: client.request(path, b"any", "host-local", {"CNI_COMMAND": "DEL"}, b"{}"))
            assert verdict.startswith("Declined: uid 65534 may not use a worker of uid 0"), verdict
            assert proc.poll() is None
    finally:
        subprocess.run(["rm", "-rf", sockets], check=False)


@needs_root
def test_a_caller_shut_out_of_roots_socket_dir_starts_no_worker(tmp_path):
    """As a user (or rootless podman's mapped root) whose launchers name root's socket dir:
    a worker it started could not use that dir either, so none is started on every exec."""
    with running_worker(str(tmp_path / "sockets")) as (proc, path):
        verdict = as_nobody(lambda: _declined(path))
        assert verdict.startswith("returned ('no worker at"), verdict
        assert verdict.endswith("Permission denied', False)"), verdict
        assert proc.poll() is None


def _declined(path: str) -> tuple[str, bool]:
    try:
        client.request(path, b"any", "host-local", {"CNI_COMMAND": "DEL"}, b"{}")
    except client.Declined as declined:
        return str(declined), declined.start_another
    raise AssertionError("the request was served")


def as_nobody(action) -> str:
    """Run `action` in a forked child as uid/gid 65534; what it returned or raised, as text."""

    def become_nobody_then_act():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1)  # so that /proc/self/ns/* stay ours to open
        return action()

    return in_a_fork(become_nobody_then_act)


@needs_root
def test_client_does_not_trust_a_worker_run_by_another_user(tmp_path):
    """A socket answered by a process of another (non-root) user is not used."""
    sockets = tempfile.mkdtemp(prefix="cni-rkt-foreign-")
    os.chown(sockets, 65534, 65534)
    path = os.path.join(sockets, "foreign.sock")
    script = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\n"
              "import os; os.chmod(sys.argv[1], 0o666)\ns.listen(1)\nprint('ready', flush=True)\ns.accept()[0].recv(1)\n")
    impostor = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 "/usr/bin/python3", "-c", script, path], stdout=subprocess.PIPE)
    try:
        assert impostor.stdout.readline() == b"ready\n"
        with pytest.raises(client.Declined, match="belongs to another user"):
            client.request(path, b"any", "host-local", {"CNI_COMMAND": "DEL"}, b"{}")
    finally:
        impostor.kill()
        impostor.wait()
        subprocess.run(["rm", "-rf", sockets], check=False)


def normalized(value) -> str:
    """JSON text with what differs between any two runs blanked: random veth names, MACs,
    and the bridge's carrier, which the kernel updates a moment after its last port goes."""
    text = json.dumps(value, sort_keys=True, default=repr)
    text = re.sub(r"veth[0-9a-f]{8}", "veth*", text).replace(" linkdown", "")
    return re.sub(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", "mac", text)


def bridge_config(data_dir: str, ip_masq: bool) -> dict:
    return {"cniVersion": "1.0.0", "name": "wkbr", "type": "bridge", "bridge": "wkbr0", "isGateway": True,
            "ipMasq": ip_masq, "ipam": {"type": "host-local", "subnet": "10.45.0.0/24", "dataDir": data_dir}}


def bridge_session(paths: Paths, how: str, data_dir: str, pod: str, ip_masq: bool) -> list[str]:
    """ADD, CHECK, DEL, DEL again and failing calls; the replies and the sandbox after each."""
    sandbox = paths.sandbox
    config = bridge_config(data_dir, ip_masq)
    stdin = json.dumps(config).encode()
    seen = [normalized(sandbox.snapshot((data_dir,))["files"][data_dir])]

    def call(command: str, container: str, body: bytes = stdin) -> bytes:
        env = cni_env(command, container, pod, cni_path=paths.bin_dir)
        out, code = paths.run(how, "bridge", env, body)
        state = sandbox.snapshot((data_dir,))
        state["files"] = state["files"][data_dir]
        seen.append(normalized([out.decode(errors="replace"), code, state]))
        return out

    added = call("ADD", "b1")
    call("CHECK", "b1", json.dumps(dict(config, prevResult=json.loads(added))).encode())
    call("CHECK", "b2", json.dumps(dict(config, prevResult=json.loads(added))).encode())  # never added
    call("ADD", "b3", json.dumps(dict(config, mtu=-1)).encode())
    call("ADD", "b4", json.dumps(dict(config, ipam=dict(config["ipam"], subnet="10.45.0.0/33"))).encode())
    call("DEL", "b1")
    call("DEL", "b1")
    # A bridge and the nat table outlive DEL; the next path starts from the same blank host.
    sandbox.sh("ip link del wkbr0 2>/dev/null; nft delete table ip nat 2>/dev/null; true")
    return seen


@needs_root
@pytest.mark.parametrize("ip_masq", [False, True], ids=["ipMasq-off", "ipMasq-on"])
def test_bridge_through_the_worker_leaves_the_host_as_in_process(paths, sandbox, tmp_path, ip_masq):
    pod = sandbox.pod()
    sessions = {how: bridge_session(paths, how, str(tmp_path / f"data-{how}"), pod, ip_masq)
                for how in ("in-process", "worker", "launcher")}
    assert sessions["worker"] == sessions["in-process"]
    assert sessions["launcher"] == sessions["in-process"]
    assert json.loads(sessions["in-process"][1])[1] == 0  # the ADD worked: the sessions did real work


@needs_root
def test_bridge_add_killed_mid_way_is_undone(paths, sandbox, tmp_path):
    """kill -9 of the child once it made the veth and waits for IPAM: DEL removes all of it."""
    data_dir = str(tmp_path / "data")
    pod = sandbox.pod()
    stdin = json.dumps(bridge_config(data_dir, ip_masq=True)).encode()
    env = cni_env("ADD", "warm", pod, cni_path=paths.bin_dir)
    assert paths.run("worker", "bridge", env, stdin)[1] == 0  # creates the bridge and the store
    assert paths.run("worker", "bridge", dict(env, CNI_COMMAND="DEL"), stdin)[1] == 0
    before = sandbox.snapshot((data_dir,))
    killed = add_killed_while_waiting(paths, "bridge", stdin, os.path.join(data_dir, "wkbr", "lock"), pod, data_dir)
    assert killed.host_at_kill != before  # the kill did land mid-way (a veth pair existed)
    reply = json.loads(killed.stdout)
    assert killed.returncode == 1 and reply["code"] == 999, killed.stderr
    assert "DEL ran and removed what it had set up" in reply["msg"]
    assert normalized(sandbox.snapshot((data_dir,))) == normalized(before)


def worker_children(worker_pid: int) -> set[int]:
    listing = subprocess.run(["pgrep", "-P", str(worker_pid)], capture_output=True, text=True).stdout
    return {int(pid) for pid in listing.split()}


@needs_root
def test_children_serve_callers_one_after_another_each_in_its_own_context(sandbox, tmp_path):
    """A child that served one caller serves the next in that caller's netns, cwd and
    environment, none of the first's: a relative dataDir lands in each caller's cwd, the
    bridge in each caller's netns, and CNI_ARGS of one never reach the other. Between
    callers a child is back in the worker's namespaces, keeping no caller's alive."""
    from sandbox import Sandbox

    sockets = str(tmp_path / "sockets")
    with running_worker(sockets) as (proc, socket_path), Sandbox() as other:
        callers = []
        for n, box in enumerate((sandbox, other, sandbox, other)):
            cwd = tmp_path / f"cwd{n}"
            cwd.mkdir()
            config = {"cniVersion": "1.0.0", "name": NETWORK, "type": "bridge", "bridge": f"wkb{n % 2}",
                      "ipam": {"type": "host-local", "subnet": "10.47.0.0/24", "dataDir": "data"}}
            extra = {"CNI_ARGS": "IgnoreUnknown=1;IP=10.47.0.9"} if n == 0 else {}
            env = cni_env("ADD", f"c{n}", box.pod(), cni_path=REPO_ROOT + "/bin", **extra)
            argv = ["ip", "netns", "exec", box.host, sys.executable, "-c", VIA_WORKER, socket_path, "bridge",
                    REPO_ROOT, TESTS_DIR]
            done = subprocess.run(argv, input=json.dumps(config).encode(), env=env, cwd=cwd, capture_output=True)
            assert done.returncode == 0, (done.stdout, done.stderr)
            callers.append((box, cwd, json.loads(done.stdout)))
            if n == 1:
                served_by = worker_children(proc.pid)
        assert worker_children(proc.pid) == served_by  # no new child for the 3rd and 4th caller
        for kind in ("net", "mnt"):  # back in the worker's namespaces: no caller's kept alive
            worker_ns = os.readlink(f"/proc/{proc.pid}/ns/{kind}")
            assert {os.readlink(f"/proc/{child}/ns/{kind}") for child in served_by} == {worker_ns}
        for n, (box, cwd, result) in enumerate(callers):
            # its own cwd, so its own dataDir: the first free address each time, but for the
            # address CNI_ARGS asked for, in the first caller's only
            assert result["ips"][0]["address"] == ("10.47.0.9/24" if n == 0 else "10.47.0.2/24")
            assert os.path.exists(cwd / "data" / NETWORK / result["ips"][0]["address"].split("/")[0])
            bridges = json.loads(box.sh("ip -j link show type bridge"))
            assert {b["ifname"] for b in bridges} == {f"wkb{n % 2}"}  # its own netns only


@needs_root
def test_a_del_replies_once_the_link_is_gone_and_its_child_serves_the_next_caller(sandbox, tmp_path):
    """In a child the DEL's reply goes out once the kernel announced the link's removal; the
    child waits out the rest of the deletion before it offers itself again. When the caller
    has its reply, the pod's link, its bridge port and its address are gone already."""
    sockets = str(tmp_path / "sockets")
    config = json.dumps(bridge_config(str(tmp_path / "data"), ip_masq=False)).encode()
    with running_worker(sockets) as (proc, socket_path):
        served_by = []
        for n in range(3):
            pod = sandbox.pod()
            for command in ("ADD", "DEL"):
                env = cni_env(command, f"d{n}", pod, cni_path=REPO_ROOT + "/bin")
                argv = [sys.executable, "-c", VIA_WORKER, socket_path, "bridge", REPO_ROOT, TESTS_DIR]
                done = sandbox.run(argv, env=env, stdin=config)
                assert done.returncode == 0, (done.stdout, done.stderr)
            assert sandbox.sh("ip -o link show", netns=os.path.basename(pod)).count(": eth0") == 0
            assert sandbox.sh("ip -o link show master wkbr0").strip() == ""
            assert "10.45.0." not in sandbox.sh("ip -o addr show", netns=os.path.basename(pod))
            served_by.append(worker_children(proc.pid))
        assert served_by[0] == served_by[1] == served_by[2]  # each child waited, then served again


@needs_root
def test_more_callers_than_spares_all_see_their_output_end(paths, sandbox, tmp_path):
    """Four callers at once while host-local's lock holds them in their children: two go
    to spares forked on the spot, while the worker holds the waiting caller's fds. No child
    may keep a copy of another caller's stderr or connection: each caller's output ends
    when its reply is written, not when some child exits."""
    data_dir = str(tmp_path / "data")
    pod = sandbox.pod()
    stdin = json.dumps(ipam_config(data_dir)).encode()
    env = cni_env("ADD", "first", pod, cni_path=paths.bin_dir)
    assert paths.run("worker", "host-local", env, stdin)[1] == 0  # the store and its lock exist
    worker_pid = int(open(paths.socket_path + ".pid").read())
    lock_path = os.path.join(data_dir, NETWORK, "lock")
    callers = []
    with open(lock_path) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for n in range(4):
                with tempfile.TemporaryFile() as config:
                    config.write(stdin)
                    config.seek(0)
                    argv = ["ip", "netns", "exec", sandbox.host, os.path.join(paths.bin_dir, "host-local")]
                    callers.append(subprocess.Popen(argv, env=cni_env("ADD", f"c{n}", pod, cni_path=paths.bin_dir),
                                                    stdin=config, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            deadline = time.monotonic() + 30
            while len(children_holding(worker_pid, lock_path)) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        replies = [caller.communicate(timeout=20) for caller in callers]  # EOF on stdout and stderr
    finally:
        for caller in callers:
            if caller.poll() is None:
                caller.kill()
                caller.wait()
    assert [caller.returncode for caller in callers] == [0, 0, 0, 0]
    assert len({json.loads(out)["ips"][0]["address"] for out, _ in replies}) == 4
