"""ADD is all or nothing: a failure after any step unwinds every earlier step.

The plugin runs in this process, inside the sandbox host netns (netns.entered), with one
step wrapped to fail right after it did its work; the sandbox must be as before.
"""

from __future__ import annotations

import json
import threading

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.net import links, masquerade, netns
from cni_rkt.plugins import bridge as bridge_plugin
from cni_rkt.protocol import runner

STEPS = [
    (bridge_plugin, "ensure_bridge"),
    (bridge_plugin, "create_veth"),
    (bridge_plugin, "attach"),
    (bridge_plugin, "ipam_add"),
    (bridge_plugin, "configure_pod"),
    (bridge_plugin, "add_gateway_addresses"),
    (masquerade, "setup_masquerade"),  # runs in the background during the two steps above
    (links, "wait_oper_up"),
]


def run_in_sandbox(sandbox, env: dict, stdin: bytes) -> tuple[dict, int]:
    host = netns.open_netns(sandbox.host_path)
    try:
        with netns.entered(host):
            out, code = runner.run("bridge", env, stdin)
    finally:
        host.close()
    return (json.loads(out) if out else {}), code


@pytest.mark.parametrize("module, step", STEPS, ids=[s for _, s in STEPS])
def test_failure_right_after_a_step_leaves_the_host_as_it_was(sandbox, bridge, monkeypatch, module, step):
    real = getattr(module, step)

    def then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise CNIError(999, f"injected failure after {step}")

    monkeypatch.setattr(module, step, then_fail)
    bridge.config["ipMasq"] = True  # so that every step runs
    # The nat table is there already, as on any node with a firewall: rules made and
    # undone leave it (an empty table is not ours to delete).
    sandbox.sh("printf '*nat\\n:POSTROUTING ACCEPT [0:0]\\nCOMMIT\\n' | iptables-restore --noflush")
    pod = sandbox.pod()
    before = bridge.state()
    result, code = run_in_sandbox(sandbox, bridge.env("ADD", pod, "cid1", "eth0"), json.dumps(bridge.config).encode())
    assert code == 1 and result["msg"] == f"injected failure after {step}"
    assert bridge.state() == before


def test_failure_keeps_a_bridge_that_other_pods_use(sandbox, bridge, monkeypatch):
    bridge.add(sandbox.pod("first"), "cid-first")
    real = links.wait_oper_up

    def fail(*args, **kwargs):
        real(*args, **kwargs)
        raise CNIError(999, "injected")

    monkeypatch.setattr(links, "wait_oper_up", fail)
    pod = sandbox.pod("second")
    before = bridge.state()
    _, code = run_in_sandbox(sandbox, bridge.env("ADD", pod, "cid-second", "eth0"), json.dumps(bridge.config).encode())
    assert code == 1
    assert bridge.state() == before  # bridge, its gateway address and the first pod untouched


def test_concurrent_first_adds_share_one_bridge(sandbox, bridge):
    pods = [sandbox.pod(str(i)) for i in range(4)]
    runs: dict[int, object] = {}

    def add(i: int) -> None:
        runs[i] = bridge.run("ADD", pods[i], f"cid-{i}")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(len(pods))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in runs.values()), [r.stdout for r in runs.values()]
    addresses = {r.json()["ips"][0]["address"] for r in runs.values()}
    assert len(addresses) == len(pods)
    bridge_addrs = json.loads(sandbox.sh("ip -j addr show tbr0"))[0]["addr_info"]
    assert [a["local"] for a in bridge_addrs if a["family"] == "inet"] == ["10.22.0.1"]


def test_failure_after_the_gateway_step_turns_forwarding_back_off(sandbox, bridge, monkeypatch):
    """The snapshot does not hold sysctls; forwarding is what isGateway changes there."""
    bridge.config["ipam"] = {"type": "host-local", "dataDir": bridge.data_dir,
                             "ranges": [[{"subnet": "10.22.0.0/16"}], [{"subnet": "fd00:22::/64"}]]}
    forwarding = "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding"
    assert sandbox.sh(forwarding).split() == ["0", "0"]
    real = bridge_plugin.add_gateway_addresses
    seen = []

    def then_fail(*args, **kwargs):
        real(*args, **kwargs)
        seen.append(sandbox.sh(forwarding).split())
        raise CNIError(999, "injected")

    monkeypatch.setattr(bridge_plugin, "add_gateway_addresses", then_fail)
    _, code = run_in_sandbox(sandbox, bridge.env("ADD", sandbox.pod(), "cid1", "eth0"), json.dumps(bridge.config).encode())
    assert code == 1 and seen == [["1", "1"]]
    assert sandbox.sh(forwarding).split() == ["0", "0"]


@pytest.mark.parametrize("elsewhere", [False, True], ids=["same-bridge", "another-bridge"])
def test_a_failed_add_leaves_forwarding_on_for_a_pod_attached_meanwhile(sandbox, bridge, monkeypatch, elsewhere):
    """Two first ADDs on a host with forwarding off: the second sees it on, made by the first,
    which then fails. The undo must not turn forwarding off under the second pod, whose
    traffic leaves through its bridge's gateway: this bridge's, or another's in the same
    netns (forwarding is the netns's, not a bridge's)."""
    forwarding = "cat /proc/sys/net/ipv4/ip_forward"
    assert sandbox.sh(forwarding).strip() == "0"
    other_config = bridge.config
    if elsewhere:
        other_config = {**bridge.config, "name": "othernet", "bridge": "otherbr0",
                        "ipam": {**bridge.config["ipam"], "subnet": "10.77.0.0/16"}}
    real = bridge_plugin.add_gateway_addresses
    other = sandbox.pod("other")
    meanwhile = []

    def another_pod_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        meanwhile.append(bridge.run("ADD", other, "cid-other", config=other_config))  # exec'd: it sees forwarding on
        raise CNIError(999, "injected")

    monkeypatch.setattr(bridge_plugin, "add_gateway_addresses", another_pod_then_fail)
    _, code = run_in_sandbox(sandbox, bridge.env("ADD", sandbox.pod(), "cid1", "eth0"), json.dumps(bridge.config).encode())
    assert code == 1 and meanwhile[0].returncode == 0, meanwhile[0].stdout
    assert sandbox.sh(forwarding).strip() == "1"
