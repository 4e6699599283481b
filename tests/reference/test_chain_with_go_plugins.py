"""Our bridge and host-local inside a runtime's plugin chain, side by side with Go's.

podman's default network chains bridge with the Go `portmap`, `firewall` and `tuning` plugins,
which read the bridge's result as their prevResult. Run through the same runtime
(`cni-rkt exec`, libcni's rules) in two sandboxes, the chain must give the same result and the
same host state whichever bridge and host-local are in it, pass CHECK, reach the pod through
its published port, and DEL back to the state it started from.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import GO_PLUGIN_DIR, needs_go_plugins
from plugin_calls import REPO_ROOT, fetch_through_published_port
from go_sides import normalise

from bridge_harness import pod_name

pytestmark = needs_go_plugins

NETWORK = "podman"
CID = "chaincid"
GATEWAY = "10.88.0.1"
HOST_PORT = 8080
POD_PORT = 80
PORT_MAPPINGS = {"portMappings": [{"hostPort": HOST_PORT, "containerPort": POD_PORT, "protocol": "tcp"}]}
GO_ONLY_PLUGINS = ("portmap", "firewall", "tuning")


def podman_conflist(cni_version: str, data_dir: str) -> dict:
    """podman 3's 87-podman-bridge.conflist with a private dataDir, a tuning sysctl, and portmap
    last: Go portmap 1.1.1's CHECK fails on a pod without IPv6 (it looks for an IPv6 chain it
    never made), and a CHECK stops at the first failure, so firewall and tuning come before it."""
    return {
        "cniVersion": cni_version,
        "name": NETWORK,
        "plugins": [
            {"type": "bridge", "bridge": "cni-podman0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir,
                      "ranges": [[{"subnet": "10.88.0.0/16", "gateway": GATEWAY}]]}},
            {"type": "firewall", "backend": "iptables"},
            {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


class Chain:
    """One side: a plugin dir (its bridge and host-local, Go's other plugins), a conf dir, a
    cache dir and a data dir, driven by `cni-rkt exec` inside its own sandbox."""

    def __init__(self, side, bridge_dir: str, root, cni_version: str, break_tuning: bool = False) -> None:
        self.side = side
        self.plugin_dir = root / "bin"
        self.plugin_dir.mkdir()
        for plugin in ("bridge", "host-local"):
            os.symlink(os.path.join(bridge_dir, plugin), self.plugin_dir / plugin)
        for plugin in GO_ONLY_PLUGINS:
            os.symlink(os.path.join(GO_PLUGIN_DIR, plugin), self.plugin_dir / plugin)
        conf_dir = root / "net.d"
        conf_dir.mkdir()
        conflist = podman_conflist(cni_version, side.data_dir)
        if break_tuning:  # a sysctl the kernel does not have: tuning's ADD fails after bridge and firewall
            conflist["plugins"][2]["sysctl"] = {"net.ipv4.conf.eth0.no_such_setting": "1"}
        (conf_dir / "87-podman-bridge.conflist").write_text(json.dumps(conflist))
        self.conf_dir, self.cache_dir = str(conf_dir), str(root / "cache")

    def exec(self, verb: str, pod: str, must_pass: bool = True):
        argv = [sys.executable, "-m", "cni_rkt.cli.main", "exec", verb, NETWORK, pod, "--conf-dir", self.conf_dir,
                "--cni-path", str(self.plugin_dir), "--cache-dir", self.cache_dir, "--container-id", CID,
                "--cap-args", json.dumps(PORT_MAPPINGS)]
        run = self.side.sandbox.run(argv, env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                                               "PYTHONPATH": REPO_ROOT})
        assert run.returncode == 0 or not must_pass, f"{self.side.name} {verb}: {run.stdout!r} {run.stderr!r}"
        return run


@pytest.mark.parametrize("cni_version", ["0.4.0", "1.0.0"])
def test_podman_chain_behaves_the_same_with_our_bridge(sides, tmp_path, cni_version):
    chains = []
    for side in sides:
        root = tmp_path / f"chain-{side.name}"
        root.mkdir()
        chains.append(Chain(side, side.plugin_dir, root, cni_version))

    results, added, tuned, checked, fetched, after = {}, {}, {}, {}, {}, {}
    for chain in chains:
        name = chain.side.name
        # An empty nat table first, as on any node with a firewall: DEL leaves an emptied table.
        chain.side.sandbox.sh("printf '*nat\\n:POSTROUTING ACCEPT [0:0]\\nCOMMIT\\n' | iptables-restore --noflush")
        pod = chain.side.sandbox.pod()
        results[name] = json.loads(normalise(chain.exec("add", pod).stdout.decode(), chain.side.sandbox.prefix))
        added[name] = chain.side.state()
        tuned[name] = chain.side.sandbox.sh("cat /proc/sys/net/ipv4/conf/eth0/arp_notify", netns=pod_name(pod))
        checked[name] = chain.exec("check", pod, must_pass=False)
        fetched[name] = fetch_through_published_port(chain.side.sandbox, pod, POD_PORT, GATEWAY, HOST_PORT)
        chain.exec("del", pod)
        after[name] = chain.side.state()

    assert results["ours"] == results["go"]
    assert results["ours"]["ips"][0]["address"] == "10.88.0.2/16"
    # portmap's DNAT, firewall's forward rules and our masquerade chain, byte for byte
    assert added["ours"]["iptables"] == added["go"]["iptables"]
    assert any("CNI-HOSTPORT-DNAT" in rule for rule in added["ours"]["iptables"])
    assert added["ours"] == added["go"]
    assert tuned["ours"].strip() == tuned["go"].strip() == "1"  # tuning found eth0 from our result
    # the host reached the pod through the published port (as the gateway: portmap's DNAT)
    assert fetched["ours"] == fetched["go"] == f"pod saw {GATEWAY}".encode()
    # CHECK: bridge, firewall and tuning pass on our result as on Go's; then the same outcome
    # from portmap (see podman_conflist)
    assert (checked["ours"].returncode, checked["ours"].stdout) == (checked["go"].returncode, checked["go"].stdout)
    for run in checked.values():
        assert run.returncode == 0 or b'plugin type="portmap" failed (check)' in run.stderr, run.stderr
    assert after["ours"] == after["go"]


def test_a_later_plugin_failing_then_podman_s_del_leaves_the_same_state(sides, tmp_path):
    """podman DELs the whole list after a failed ADD: the bridge's DEL (without a prevResult,
    as the ADD never finished) must clean up as Go's does."""
    failed, after = {}, {}
    for side in sides:
        root = tmp_path / f"chain-{side.name}"
        root.mkdir()
        chain = Chain(side, side.plugin_dir, root, "1.0.0", break_tuning=True)
        side.sandbox.sh("printf '*nat\\n:POSTROUTING ACCEPT [0:0]\\nCOMMIT\\n' | iptables-restore --noflush")
        pod = side.sandbox.pod()
        add = chain.exec("add", pod, must_pass=False)
        failed[side.name] = (add.returncode, add.stdout)
        chain.exec("del", pod)
        after[side.name] = side.state()
    assert failed["ours"] == failed["go"]
    assert failed["ours"][0] == 1 and b"no_such_setting" in failed["ours"][1]
    assert after["ours"] == after["go"]
    assert after["ours"]["files"] == ["podman/last_reserved_ip.0", "podman/lock"]  # the reservation is gone
