"""kube-flannel's network, the most common CNI config there is: our flannel (delegating to our
bridge and host-local) chained with Debian's Go portmap, run by `cni-rkt exec` in a sandbox node.
portmap reads flannel's result: the published port reaches the pod, and DEL takes the pod's
rules, links and reservation away again. (The file's cniVersion, 0.3.1, has no CHECK.)"""

from __future__ import annotations

import json
import os
import sys

from conftest import GO_PLUGIN_DIR, needs_go_plugins
from plugin_calls import REPO_ROOT, fetch_through_published_port

pytestmark = needs_go_plugins

SUBNET_ENV = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
GATEWAY, POD_ADDRESS = "10.244.3.1", "10.244.3.2"
PORT_MAPPINGS = {"portMappings": [{"hostPort": 30080, "containerPort": 8080, "protocol": "tcp"}]}


def kube_flannel_conflist(root) -> dict:
    """kube-flannel.yml's 10-flannel.conflist (corpus: flannel__kube-flannel-current-10-flannel.conflist),
    with this node's subnet.env and data dirs."""
    return {"name": "cbr0", "cniVersion": "0.3.1", "plugins": [
        {"type": "flannel", "subnetFile": str(root / "subnet.env"), "dataDir": str(root / "flannel"),
         "ipam": {"dataDir": str(root / "ipam")}, "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]}


def test_kube_flannel_chain_publishes_the_port_and_del_cleans_up(sandbox, plugin_dir, tmp_path):
    (tmp_path / "subnet.env").write_text(SUBNET_ENV)
    conf_dir, bin_dir = tmp_path / "net.d", tmp_path / "bin"
    conf_dir.mkdir()
    bin_dir.mkdir()
    (conf_dir / "10-flannel.conflist").write_text(json.dumps(kube_flannel_conflist(tmp_path)))
    for plugin in ("flannel", "bridge", "host-local"):
        os.symlink(os.path.join(plugin_dir, plugin), bin_dir / plugin)
    os.symlink(os.path.join(GO_PLUGIN_DIR, "portmap"), bin_dir / "portmap")

    def cni_rkt_exec(verb: str, pod: str):
        argv = [sys.executable, "-m", "cni_rkt.cli.main", "exec", verb, "cbr0", pod, "--conf-dir", str(conf_dir),
                "--cni-path", str(bin_dir), "--cache-dir", str(tmp_path / "cache"), "--cap-args",
                json.dumps(PORT_MAPPINGS)]
        return sandbox.run(argv, env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": REPO_ROOT})

    sandbox.sh("printf '*nat\\n:POSTROUTING ACCEPT [0:0]\\nCOMMIT\\n' | iptables-restore --noflush")
    pod = sandbox.pod()
    before = sandbox.snapshot()
    added = cni_rkt_exec("add", pod)
    assert added.returncode == 0, (added.stdout, added.stderr)
    assert [ip["address"] for ip in added.json()["ips"]] == [f"{POD_ADDRESS}/24"]
    assert any(POD_ADDRESS in rule and "DNAT" in rule for rule in sandbox.snapshot()["iptables"])
    assert fetch_through_published_port(sandbox, pod, 8080, GATEWAY, 30080) == f"pod saw {GATEWAY}".encode()

    deleted = cni_rkt_exec("del", pod)
    assert deleted.returncode == 0, (deleted.stdout, deleted.stderr)
    after = sandbox.snapshot()
    # nothing of the pod is left; what stays is the bridge (as with the reference) and
    # portmap's own top-level chains
    new_rules = [rule for rule in after["iptables"] if rule not in before["iptables"]]
    assert new_rules and not [rule for rule in new_rules if POD_ADDRESS in rule or "HOSTPORT" not in rule]
    assert [link for link in after[sandbox.host]["links"] if link not in before[sandbox.host]["links"]] == [
        ("cni0", "ether")]  # (name, link_type)
    assert after[os.path.basename(pod)] == before[os.path.basename(pod)]
    assert os.listdir(tmp_path / "flannel") == []
    assert sorted(os.listdir(tmp_path / "ipam" / "cbr0")) == ["last_reserved_ip.0", "lock"]
