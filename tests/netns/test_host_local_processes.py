"""host-local as separate processes: concurrency, SIGKILL half-way, reclaiming.

Through the installed launcher, exec'd the way a runtime does, inside a sandbox netns
(tests/hostlocal_exec.py).
"""

import os
import random
import signal
import time

import pytest
from hostlocal_exec import address_files, call, finish, ipam_config, start

from cni_rkt.plugins.host_local import reserved_ips

pytestmark = pytest.mark.usefixtures("host_local_sandbox")


@pytest.fixture
def host_local(plugin_dir):
    return os.path.join(plugin_dir, "host-local")


def test_100_concurrent_adds_get_distinct_addresses_and_100_dels_leave_only_go_files(host_local, data_dir):
    conf = ipam_config(data_dir, subnet="10.5.0.0/24")
    procs = [start(host_local, "ADD", conf, f"pod{i}") for i in range(100)]
    replies = [finish(p) for p in procs]
    assert [r.returncode for r in replies] == [0] * 100, [r.stdout for r in replies if r.returncode]
    addresses = [r.json()["ips"][0]["address"] for r in replies]
    assert len(set(addresses)) == 100
    assert len(address_files(os.path.join(data_dir, "net1"))) == 100

    procs = [start(host_local, "DEL", conf, f"pod{i}") for i in range(100)]
    assert [finish(p).returncode for p in procs] == [0] * 100
    assert sorted(os.listdir(os.path.join(data_dir, "net1"))) == ["last_reserved_ip.0", "lock"]
    # our index lives beside the network directories, and is dropped when the network is empty
    assert sorted(os.listdir(data_dir)) == [".cni-rkt-index", "net1"]
    assert os.listdir(os.path.join(data_dir, ".cni-rkt-index")) == []


PREPOPULATED = 1500
MAX_ROUNDS = 40


def _populate(directory: str, count: int) -> None:
    """Reservations as the Go plugin writes them, so every round starts with a stale index."""
    os.makedirs(directory, exist_ok=True)
    for i in range(count):
        with open(os.path.join(directory, f"10.6.{100 + i // 250}.{1 + i % 250}"), "w") as f:
            f.write(f"go{i}\r\neth0")


def _poke(directory: str) -> None:
    """A foreign change (as the Go plugin's ADD and DEL make): the index must be rebuilt."""
    path = os.path.join(directory, "10.6.255.250")
    with open(path, "w") as f:
        f.write("foreign\r\neth0")
    os.unlink(path)


def _holds_flock(pid: int, inode: int) -> bool:
    with open("/proc/locks") as f:
        return any(
            line.split()[4] == str(pid) and line.split()[5].endswith(f":{inode}")
            for line in f
            if "FLOCK" in line and "->" not in line
        )


def _kill_inside_the_lock(rng: random.Random, proc, lock_inode: int) -> bool:
    """SIGKILL `proc` a random moment after it took the store's lock (rebuild, claim, index).

    False, and no kill, when it let go of the lock (or ended) before that moment came.
    """
    deadline = time.monotonic() + 60
    while not _holds_flock(proc.pid, lock_inode):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.0005)
    time.sleep(rng.uniform(0.0, 0.003))  # the lock is held for a millisecond or so: a rebuild, or a claim
    if not _holds_flock(proc.pid, lock_inode):
        return False
    proc.send_signal(signal.SIGKILL)
    return True


def _owners(directory: str) -> dict[str, list[str]]:
    """container id -> its addresses; asserts that every address file is whole."""
    owners: dict[str, list[str]] = {}
    for name, content in address_files(directory).items():
        if name.startswith(".cni-rkt-tmp-"):
            continue  # a killed process's scratch file: removed by the next open
        cid, sep, ifname = content.decode().partition("\r\n")
        assert sep and cid and ifname == "eth0", (name, content)
        owners.setdefault(cid, []).append(name)
    return owners


def test_sigkill_half_way_through_add_leaves_a_consistent_store(host_local, data_dir):
    conf = ipam_config(data_dir, subnet="10.6.0.0/16")
    net = os.path.join(data_dir, "net1")
    _populate(net, PREPOPULATED)  # a rebuild under the lock takes long enough for kills to land in it
    open(os.path.join(net, "lock"), "w").close()
    rng = random.Random(4)
    outcomes = {}
    kills_in_the_lock = 0
    for round_no in range(MAX_ROUNDS):  # until enough kills landed inside the lock: it is held only briefly
        if kills_in_the_lock >= 3:
            break
        _poke(net)
        # In-process: with the worker, a kill would stop the launcher, not the child doing the work.
        procs = {f"r{round_no}p{i}": start(host_local, "ADD", conf, f"r{round_no}p{i}", in_process=True)
                 for i in range(6)}
        for cid in rng.sample(sorted(procs), 3):
            kills_in_the_lock += _kill_inside_the_lock(rng, procs[cid], os.stat(os.path.join(net, "lock")).st_ino)
        outcomes.update({cid: finish(proc) for cid, proc in procs.items()})
    assert kills_in_the_lock >= 3, f"only {kills_in_the_lock} kills landed inside the lock in {MAX_ROUNDS} rounds"
    succeeded = {cid: r.json()["ips"][0]["address"].split("/")[0] for cid, r in outcomes.items() if r.returncode == 0}
    killed = [cid for cid, r in outcomes.items() if r.returncode != 0]
    assert killed and succeeded

    owners = _owners(net)
    assert len(set(succeeded.values())) == len(succeeded)
    for cid, address in succeeded.items():
        assert owners[cid] == [address]
    for cid, names in owners.items():  # the index agrees with the files, whatever the kills cut short
        assert sorted(reserved_ips(conf, cid, "eth0")) == sorted(names)
    assert not [name for name in os.listdir(net) if name.startswith(".")]

    # DEL reclaims what a killed ADD may have reserved; GC reclaims the rest
    for cid in killed[: len(killed) // 2] + list(succeeded):
        assert call(host_local, "DEL", conf, cid).returncode == 0
    valid = [{"containerID": f"go{i}", "ifname": "eth0"} for i in range(PREPOPULATED)]
    gc_conf = {**conf, "cniVersion": "1.1.0", "cni.dev/valid-attachments": valid}
    assert call(host_local, "GC", gc_conf, "").returncode == 0
    remaining = address_files(net)
    assert len(remaining) == PREPOPULATED and all(c.startswith(b"go") for c in remaining.values())
