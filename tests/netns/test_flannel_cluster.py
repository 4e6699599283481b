"""A simulated 3-node flannel cluster, built from network namespaces alone.

    underlay netns:   bridge ul0 ----------------------------------------+
                        |  veth                |  veth                  |  veth
    node 1 netns: underlay0 192.168.50.1  node 2: .2               node 3: .3
                  cni0 10.1.1.1/24 (bridge, made by the delegate)   ...
                  routes 10.1.2.0/24 via .2, 10.1.3.0/24 via .3     (host-gw style)
                  pods p0, p1 via flannel -> bridge -> host-local

Each node has its own subnet.env (a /24 of 10.1.0.0/16, as flanneld writes it), dataDir and
host-local dataDir, given to the plugin through the config's subnetFile/dataDir/ipam.dataDir.
Every pod must reach every other pod, on its node and across nodes; after DEL each node
must be as it was (the delegate's bridge aside, which the reference leaves by design).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

import pytest
from flannel_nodes import ip, pod_ipv4, ping, reservations, run_plugin, without_bridge

from sandbox import Sandbox

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces")

NODES = 3
PODS_PER_NODE = 2
NETWORK = "flannel-cluster"
CLUSTER_CIDR = "10.1.0.0/16"


@dataclass
class Node:
    index: int
    box: Sandbox
    files: str
    pods: list[dict] = field(default_factory=list)

    @property
    def underlay_ip(self) -> str:
        return f"192.168.50.{self.index}"

    @property
    def subnet(self) -> str:
        return f"10.1.{self.index}.0/24"

    def config(self) -> dict:
        return {
            "cniVersion": "1.0.0",
            "name": NETWORK,
            "type": "flannel",
            "subnetFile": os.path.join(self.files, "subnet.env"),
            "dataDir": os.path.join(self.files, "flannel"),
            "delegate": {"isDefaultGateway": True},
            "ipam": {"dataDir": os.path.join(self.files, "ipam")},
        }


def _join_underlay(underlay: Sandbox, node: Node) -> None:
    """A veth from the underlay bridge into the node, created inside those two netns only."""
    port = f"ul{node.index}"
    ip(underlay.host, "link", "add", port, "type", "veth", "peer", "name", "underlay0", "netns", node.box.host)
    ip(underlay.host, "link", "set", port, "master", "ul0", "up")
    ip(node.box.host, "addr", "add", f"{node.underlay_ip}/24", "dev", "underlay0")
    ip(node.box.host, "link", "set", "underlay0", "up")
    node.box.sh("sysctl -qw net.ipv4.ip_forward=1")


def _write_subnet_env(node: Node) -> None:
    os.makedirs(node.files)
    with open(os.path.join(node.files, "subnet.env"), "w") as f:
        f.write(f"FLANNEL_NETWORK={CLUSTER_CIDR}\nFLANNEL_SUBNET=10.1.{node.index}.1/24\n"
                "FLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n")


@pytest.fixture
def cluster(tmp_path):
    underlay = Sandbox()
    nodes: list[Node] = []
    try:
        ip(underlay.host, "link", "add", "ul0", "type", "bridge")
        ip(underlay.host, "link", "set", "ul0", "up")
        for index in range(1, NODES + 1):
            node = Node(index, Sandbox(), str(tmp_path / f"node{index}"))
            nodes.append(node)
            _write_subnet_env(node)
            _join_underlay(underlay, node)
        for node in nodes:  # host-gw: each node routes the other nodes' subnets to them
            for other in nodes:
                if other is not node:
                    ip(node.box.host, "route", "add", other.subnet, "via", other.underlay_ip)
        yield nodes
    finally:
        for node in nodes:
            node.box.close()
        underlay.close()


def test_pods_on_three_nodes_reach_each_other_and_del_leaves_nothing(cluster, plugin_dir):
    cni_bin = plugin_dir  # our flannel, bridge and host-local launchers
    flannel = [os.path.join(cni_bin, "flannel")]

    before = {}
    for node in cluster:
        for _ in range(PODS_PER_NODE):
            node.pods.append({"netns": node.box.pod(), "cid": str(uuid.uuid4())})
        before[node.index] = node.box.snapshot((os.path.join(node.files, "flannel"),))

    for node in cluster:
        for pod in node.pods:
            env = {"CNI_CONTAINERID": pod["cid"], "CNI_NETNS": pod["netns"], "CNI_IFNAME": "eth0", "CNI_PATH": cni_bin}
            result = run_plugin(node.box, flannel, "ADD", env, node.config()).json()
            pod["ip"] = pod_ipv4(result)
            assert pod["ip"].startswith(f"10.1.{node.index}."), result
            assert {"dst": CLUSTER_CIDR} in result["routes"]
            saved = sorted(os.listdir(os.path.join(node.files, "flannel")))
            assert f"{pod['cid']}@eth0" in saved and pod["cid"] in saved

    pods = [(node, pod) for node in cluster for pod in node.pods]
    unreachable = [
        (src["ip"], dst["ip"])
        for src_node, src in pods
        for _, dst in pods
        if src is not dst and not ping(src_node.box, os.path.basename(src["netns"]), dst["ip"])
    ]
    assert unreachable == [], f"pod pairs without connectivity: {unreachable}"

    for node in cluster:
        for pod in node.pods:
            env = {"CNI_CONTAINERID": pod["cid"], "CNI_NETNS": pod["netns"], "CNI_IFNAME": "eth0", "CNI_PATH": cni_bin}
            run_plugin(node.box, flannel, "DEL", env, node.config())
        after = node.box.snapshot((os.path.join(node.files, "flannel"),))
        assert without_bridge(after, "cni0") == without_bridge(before[node.index], "cni0")
        assert os.listdir(os.path.join(node.files, "flannel")) == []
        assert reservations(os.path.join(node.files, "ipam", NETWORK)) == []
