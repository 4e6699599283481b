"""Chaos: what a node really does to bridge + host-local, in a seeded random order.

The two promises under test: nothing leaks when ADD fails, and DEL always cleans up.
A schedule of a few dozen events (fixed seed) runs through the installed launchers, once
with the worker and once in-process (CNI_RKT_WORKER=0): plain ADDs and DELs, a runtime's
timeout (SIGKILL of the exec'd launcher) in the middle of ADD or DEL followed by its DEL,
a worker child killed (SIGKILL or SIGTERM) mid-request, the worker itself killed, bursts
of parallel ADD/DEL on one bridge and one host-local network, a pod's netns deleted
before its DEL, DEL repeated, DEL of a container never added, an ADD refused after its
veth was made; each pod with ipMasq off, on iptables or on nftables, some with macspoofchk.

"Mid-request" is made certain, not timed: the test holds host-local's lock, so the
process serving the request waits there, with the pod's veth made (ADD) or being
deleted (DEL); the kill lands, then the lock is let go. Kills after a random delay
add other moments. After the schedule the runtime's final DEL runs for every pod, and
the sandbox must be as it was: no veth, bridge port, address, route, reservation file,
iptables or nft rule of ours, and no process of ours. Every failure names the seed and
the events that led to it.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from plugin_calls import cni_env
from processes import all_pids, holds_open, is_running, netns_of, parent_of
from worker_process import children_holding, running_worker

from cni_rkt.launcher import install_launchers
from cni_rkt.net import spoofcheck
from cni_rkt.net.masquerade_names import chain_name, nft_instance_hash
from cni_rkt.worker.control import stop_workers, worker_pids

SEED = int(os.environ.get("CNI_RKT_CHAOS_SEED", "20261126"))  # another seed explores other schedules
EVENTS = 30
NETWORK, BRIDGE = "chaos", "chaosbr0"
ERROR_CODES_OF_A_KILL = {999}  # the worker's "lost child" and "interrupted" replies
SETTLE_SECONDS = 30.0  # bounded waits for what the kernel and orphaned children finish


@dataclass
class Pod:
    cid: str
    netns: str  # what the runtime passes as CNI_NETNS (the path may be gone)
    masquerade: str  # ipMasq's backend: "" (ipMasq off), "iptables" or "nftables"
    spoofcheck: bool
    cni_args: str = ""


def bridge_config(data_dir: str, pod: Pod) -> bytes:
    config = {
        "cniVersion": "1.0.0", "name": NETWORK, "type": "bridge", "bridge": BRIDGE, "isGateway": True,
        "ipMasq": bool(pod.masquerade), "macspoofchk": pod.spoofcheck,
        "ipam": {"type": "host-local", "subnet": "10.48.0.0/24", "dataDir": data_dir},
    }
    if pod.masquerade:
        config["ipMasqBackend"] = pod.masquerade
    return json.dumps(config).encode()


class Chaos:
    """The runtime side: execs the launchers in the sandbox, kills them, keeps the event log."""

    def __init__(self, sandbox, bin_dir: str, data_dir: str, sockets: str, use_worker: bool, rng) -> None:
        self.sandbox = sandbox
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.sockets = sockets
        self.use_worker = use_worker
        self.rng = rng
        self.pods: dict[str, Pod] = {}
        self.log: list[str] = []

    # --- running the plugin -------------------------------------------------------------

    def env(self, command: str, pod: Pod) -> dict[str, str]:
        env = cni_env(command, pod.cid, pod.netns, cni_path=self.bin_dir)
        if pod.cni_args:
            env["CNI_ARGS"] = pod.cni_args
        if not self.use_worker:
            env["CNI_RKT_WORKER"] = "0"
        return env

    def start(self, command: str, pod: Pod) -> subprocess.Popen:
        """Exec the bridge launcher as a runtime does (`ip netns exec` execs it: its PID is ours)."""
        with tempfile.TemporaryFile() as stdin:
            stdin.write(bridge_config(self.data_dir, pod))
            stdin.seek(0)
            argv = ["ip", "netns", "exec", self.sandbox.host, os.path.join(self.bin_dir, "bridge")]
            return subprocess.Popen(argv, env=self.env(command, pod), stdin=stdin,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(self, proc: subprocess.Popen) -> tuple[int, bytes, bytes]:
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return proc.returncode, out, err

    def call(self, command: str, pod: Pod) -> tuple[int, bytes, bytes]:
        return self.finish(self.start(command, pod))

    def new_pod(self, with_netns: bool = True) -> Pod:
        n = len(self.pods)
        netns = self.sandbox.pod(str(n)) if with_netns else f"/var/run/netns/{self.sandbox.prefix}-none{n}"
        pod = Pod(f"chaos-{n}", netns, masquerade=self.rng.choice(["", "iptables", "nftables"]),
                  spoofcheck=self.rng.random() < 0.3)
        self.pods[pod.cid] = pod
        return pod

    # --- what must hold -----------------------------------------------------------------

    def fail(self, what: str) -> None:
        pytest.fail(f"{what}\nseed {SEED}, {'worker' if self.use_worker else 'in-process'}; events:\n  "
                    + "\n  ".join(self.log), pytrace=False)

    def expect_del_ok(self, pod: Pod, reply: tuple[int, bytes, bytes]) -> None:
        code, out, err = reply
        if code != 0 or out:
            self.fail(f"DEL of {pod.cid} failed: {code} {out!r} {err.decode(errors='replace')}")

    def expect_error_json(self, pod: Pod, reply: tuple[int, bytes, bytes], codes=None) -> None:
        code, out, err = reply
        try:
            answer = json.loads(out)
        except ValueError:
            answer = None
        if code == 0 or not isinstance(answer, dict) or (codes and answer.get("code") not in codes):
            self.fail(f"{pod.cid}: expected the spec's error JSON (code in {codes}), got {code} {out!r} "
                      f"{err.decode(errors='replace')}")

    def leftovers(self, pod: Pod) -> list[str]:
        """What of `pod` is still there: its interface, its reservations, its ipMasq and
        macspoofchk rules."""
        found = []
        name = os.path.basename(pod.netns)
        if name in self.sandbox.pods and "eth0" in self.sandbox.sh("ip -o link show", netns=name):
            found.append(f"eth0 in {name}")
        found += [f"reservation {f}" for f, owner in self.reservations().items() if owner == pod.cid]
        chain = chain_name(NETWORK, pod.cid)
        if chain in self.sandbox.sh("iptables-save -t nat 2>/dev/null || true"):
            found.append(f"iptables chain {chain}")
        rules = self.sandbox.sh("nft list ruleset 2>/dev/null || true")
        if nft_instance_hash(NETWORK, "eth0", pod.cid) in rules:
            found.append("nftables masquerade rule")
        found += [f"macspoofchk chain {c}" for c in spoofcheck.chain_names(pod.cid, "eth0") if c in rules]
        return found

    def expect_nothing_left(self, pod: Pod, after: str) -> None:
        self.wait_quiet()
        left = self.leftovers(pod)
        if left:
            self.fail(f"after {after} of {pod.cid}: {left}")

    def reservations(self) -> dict[str, str]:
        directory = os.path.join(self.data_dir, NETWORK)
        found = {}
        for name in os.listdir(directory) if os.path.isdir(directory) else ():
            try:
                if name[:1].isdigit():
                    with open(os.path.join(directory, name), errors="replace") as f:
                        found[name] = f.read().split("\r\n")[0]
            except FileNotFoundError:  # released meanwhile
                continue
        return found

    # --- the processes doing the work ---------------------------------------------------

    def lock_path(self) -> str:
        return os.path.join(self.data_dir, NETWORK, "lock")

    @contextmanager
    def holding_ipam_lock(self):
        """While held, a request waits in host-local's store (after ADD made the veth, while
        DEL deletes it); let go on the way out, also on failure."""
        with open(self.lock_path()) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def waiting_at_lock(self, launcher: subprocess.Popen) -> tuple[str, int]:
        """("launcher", pid) when the launcher does the work itself (no worker answered),
        else ("child", pid) of the worker's child serving it; waits until one holds the lock."""
        path = self.lock_path()
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            if launcher.poll() is not None:
                break
            if holds_open(launcher.pid, path):
                return "launcher", launcher.pid
            for worker in worker_pids(self.sockets):
                holding = children_holding(worker, path)
                if holding:
                    return "child", holding.pop()
            time.sleep(0.005)
        self.fail(f"no process of the request reached host-local's lock (launcher exit {launcher.poll()})")

    def wait_quiet(self) -> None:
        """Until no worker child serves anyone (each is back in its worker's netns): a child
        whose launcher was killed still finishes the request."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while self.busy_children() and time.monotonic() < deadline:
            time.sleep(0.02)

    def busy_children(self) -> list[int]:
        """Processes still in the sandbox's namespaces (a child serving a caller, an orphan)."""
        ours = {f"net:[{os.stat(os.path.join('/var/run/netns', n)).st_ino}]" for n in (self.sandbox.host, *self.sandbox.pods)}
        return [pid for pid in all_pids() if netns_of(pid) in ours]


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --- the events ------------------------------------------------------------------------


def add(chaos: Chaos) -> None:
    pod = chaos.new_pod()
    reply = chaos.call("ADD", pod)
    chaos.log[-1] += f" -> {reply[0]}"
    if reply[0] != 0:
        chaos.expect_error_json(pod, reply)
        chaos.expect_nothing_left(pod, "a failed ADD")


def add_refused(chaos: Chaos) -> None:
    """An ADD that fails after the veth was made (host-local refuses the address asked for)."""
    pod = chaos.new_pod()
    pod.cni_args = "IgnoreUnknown=1;IP=10.99.0.5"
    reply = chaos.call("ADD", pod)
    pod.cni_args = ""
    chaos.log[-1] += f" -> {reply[0]}"
    chaos.expect_error_json(pod, reply)
    chaos.expect_nothing_left(pod, "a refused ADD")


def add_launcher_killed(chaos: Chaos) -> None:
    """A runtime's timeout mid-ADD, then its DEL (as containerd and CRI-O do at once)."""
    pod = chaos.new_pod()
    _killed_mid_request(chaos, "ADD", pod, signal.SIGKILL, at_lock=chaos.rng.random() < 0.6)
    chaos.expect_del_ok(pod, chaos.call("DEL", pod))
    chaos.expect_nothing_left(pod, "the DEL after a killed ADD")


def del_launcher_killed(chaos: Chaos) -> None:
    """A runtime's timeout mid-DEL; it retries DEL."""
    pod = _some_pod(chaos) or chaos.new_pod()
    _killed_mid_request(chaos, "DEL", pod, signal.SIGKILL, at_lock=chaos.rng.random() < 0.6)
    chaos.expect_del_ok(pod, chaos.call("DEL", pod))
    chaos.expect_nothing_left(pod, "the DEL retried after a killed DEL")


def _killed_mid_request(chaos: Chaos, command: str, pod: Pod, sig: int, at_lock: bool) -> None:
    if not at_lock:
        delay = chaos.rng.uniform(0.0, 0.4)
        chaos.log[-1] += f" (kill after {delay:.2f} s)"
        proc = chaos.start(command, pod)
        time.sleep(delay)
        _kill(proc.pid, sig)
        chaos.finish(proc)
        chaos.wait_quiet()  # what a killed launcher's worker child goes on with: see the README
        return
    with chaos.holding_ipam_lock():
        proc = chaos.start(command, pod)
        chaos.waiting_at_lock(proc)
        _kill(proc.pid, sig)
    chaos.finish(proc)  # a worker's child holds the caller's stderr until it has finished
    chaos.wait_quiet()


def child_killed(chaos: Chaos) -> None:
    """The process doing an ADD or DEL is killed (SIGKILL or SIGTERM) while it waits for IPAM:
    the worker's child (the caller gets error 999), or in-process the launcher itself."""
    command = chaos.rng.choice(["ADD", "DEL"])
    sig = (signal.SIGKILL, signal.SIGTERM)[sum("child_killed" in e for e in chaos.log) % 2]  # both, in turn
    pod = chaos.new_pod() if command == "ADD" else (_some_pod(chaos) or chaos.new_pod())
    chaos.log[-1] += f" ({command} of {pod.cid}, {sig.name})"
    with chaos.holding_ipam_lock():
        proc = chaos.start(command, pod)
        who, pid = chaos.waiting_at_lock(proc)
        _kill(pid, sig)
    reply = chaos.finish(proc)
    chaos.log[-1] += f" [{who}] -> {reply[0]}"
    if who == "child":
        chaos.expect_error_json(pod, reply, ERROR_CODES_OF_A_KILL)
        if command == "ADD":  # the worker (or the child's own undo) took the ADD back
            chaos.expect_nothing_left(pod, f"an ADD whose child got {sig.name}")
    chaos.expect_del_ok(pod, chaos.call("DEL", pod))
    chaos.expect_nothing_left(pod, "the DEL after a killed request")


def worker_killed(chaos: Chaos) -> None:
    """SIGKILL of the worker while its child serves an ADD: the child still replies."""
    pod = chaos.new_pod()
    with chaos.holding_ipam_lock():
        proc = chaos.start("ADD", pod)
        who, pid = chaos.waiting_at_lock(proc)
        if who == "child" and (worker := parent_of(pid)):
            _kill(worker, signal.SIGKILL)
    reply = chaos.finish(proc)
    chaos.log[-1] += f" [{who}] -> {reply[0]}"
    if reply[0] != 0:
        chaos.fail(f"ADD of {pod.cid} whose worker was killed: {reply}")


def parallel(chaos: Chaos) -> None:
    """ADDs of new pods and DELs of others, all at once on one bridge and one network."""
    calls = [("ADD", chaos.new_pod()) for _ in range(chaos.rng.randint(2, 4))]
    calls += [("DEL", pod) for pod in chaos.rng.sample(_live_pods(chaos), min(2, len(_live_pods(chaos))))
              if all(p is not pod for _, p in calls)]
    chaos.log[-1] += " " + ", ".join(f"{c} {p.cid}" for c, p in calls)
    procs = [(command, pod, chaos.start(command, pod)) for command, pod in calls]
    for command, pod, proc in procs:
        reply = chaos.finish(proc)
        if reply[0] != 0:
            chaos.fail(f"parallel {command} of {pod.cid}: {reply}")


def netns_gone(chaos: Chaos) -> None:
    """The runtime (or a crash) removed the pod's netns before its DEL."""
    pod = _some_pod(chaos)
    if pod is not None:
        chaos.log[-1] += f" ({pod.cid})"
        chaos.sandbox.remove_pod(pod.netns)


def delete(chaos: Chaos) -> None:
    pod = _some_pod(chaos, any_state=True)
    if pod is not None:
        chaos.log[-1] += f" ({pod.cid})"
        chaos.expect_del_ok(pod, chaos.call("DEL", pod))
        chaos.expect_nothing_left(pod, "DEL")


def delete_twice(chaos: Chaos) -> None:
    pod = _some_pod(chaos, any_state=True)
    if pod is not None:
        chaos.log[-1] += f" ({pod.cid})"
        for _ in range(2):
            chaos.expect_del_ok(pod, chaos.call("DEL", pod))
        chaos.expect_nothing_left(pod, "DEL twice")


def delete_never_added(chaos: Chaos) -> None:
    pod = chaos.new_pod(with_netns=chaos.rng.random() < 0.5)
    chaos.expect_del_ok(pod, chaos.call("DEL", pod))
    chaos.expect_nothing_left(pod, "DEL of a container never added")


def _live_pods(chaos: Chaos) -> list[Pod]:
    return [p for p in chaos.pods.values() if os.path.basename(p.netns) in chaos.sandbox.pods]


def _some_pod(chaos: Chaos, any_state: bool = False) -> Pod | None:
    pods = list(chaos.pods.values()) if any_state else _live_pods(chaos)
    return chaos.rng.choice(pods) if pods else None


EVENT_WEIGHTS = {
    add: 4, add_refused: 1, add_launcher_killed: 3, del_launcher_killed: 2, child_killed: 3, worker_killed: 1,
    parallel: 2, netns_gone: 2, delete: 2, delete_twice: 1, delete_never_added: 1,
}
WORKER_ONLY = {worker_killed}


# --- the test --------------------------------------------------------------------------


def steady(state: dict) -> str:
    """The snapshot without what changes on its own: the bridge's carrier a moment after
    its last port goes."""
    return json.dumps(state, sort_keys=True).replace(" linkdown", "")


@pytest.mark.parametrize("use_worker", [True, False], ids=["worker", "in-process"])
def test_chaos_leaves_the_host_as_it_was(sandbox, tmp_path, use_worker):
    sockets = str(tmp_path / "sockets")
    bin_dir = str(tmp_path / "bin")
    data_dir = str(tmp_path / "data")
    install_launchers(bin_dir, plugins=("bridge", "host-local"), worker_socket_dir=sockets)
    chaos = Chaos(sandbox, bin_dir, data_dir, sockets, use_worker, random.Random(SEED))
    try:
        with running_worker(sockets) if use_worker else _nothing():
            _run_schedule(chaos)
    finally:
        stop_workers(sockets)
        strays = _end_strays(chaos)
    if strays:
        chaos.fail(f"processes of ours outlived the test: {strays}")



@contextmanager
def _nothing():
    yield None


def _run_schedule(chaos: Chaos) -> None:
    # The bridge, its gateway address, forwarding, the nat tables, the nft tables and
    # host-local's files for an empty network stay after the last DEL: made before the snapshot.
    for backend in ("iptables", "nftables"):
        warm = Pod(f"chaos-warm-{backend}", chaos.sandbox.pod(f"warm-{backend}"), backend, spoofcheck=True)
        assert chaos.call("ADD", warm)[0] == 0
        chaos.expect_del_ok(warm, chaos.call("DEL", warm))
        chaos.sandbox.remove_pod(warm.netns)
    before = chaos.sandbox.snapshot((chaos.data_dir,))
    events = [e for e in EVENT_WEIGHTS if chaos.use_worker or e not in WORKER_ONLY]
    weights = [EVENT_WEIGHTS[e] for e in events]
    for n in range(EVENTS):
        event = chaos.rng.choices(events, weights)[0]
        chaos.log.append(f"{n}: {event.__name__}")
        event(chaos)
    chaos.log.append("final DEL of every pod")
    for pod in chaos.pods.values():
        chaos.expect_del_ok(pod, chaos.call("DEL", pod))
    for name in list(chaos.sandbox.pods):
        chaos.sandbox.remove_pod(os.path.join("/var/run/netns", name))
    deadline = time.monotonic() + SETTLE_SECONDS  # a removed netns's veth goes a moment later
    while steady(after := chaos.sandbox.snapshot((chaos.data_dir,))) != steady(before):
        if time.monotonic() > deadline:
            chaos.fail("the sandbox differs from before the schedule:\n"
                       + "\n".join(_differences(before, after)))
        time.sleep(0.1)


def _differences(before: dict, after: dict) -> list[str]:
    lines = []
    for key in sorted(set(before) | set(after)):
        if steady(before.get(key)) != steady(after.get(key)):
            lines.append(f"{key}:\n    before {before.get(key)}\n    after  {after.get(key)}")
    return lines


def _end_strays(chaos: Chaos) -> list[str]:
    """Our processes still running once the workers ended (waited for a while): any in the
    sandbox's namespaces, and any worker or child on our private socket dir; killed by
    PID, so that nothing outlives the test, and reported."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (found := _ours(chaos)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in found:
        _kill(pid, signal.SIGKILL)
    return [f"{pid} {_cmdline(pid)}" for pid in found]


def _ours(chaos: Chaos) -> list[int]:
    mine = os.fsencode(chaos.sockets)
    found = set(chaos.busy_children())
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mine in f.read():
                    found.add(pid)
        except OSError:
            continue
    return sorted(pid for pid in found if is_running(pid))


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "(gone)"
