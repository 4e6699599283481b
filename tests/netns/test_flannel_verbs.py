"""flannel's CHECK, STATUS and GC through our bridge and host-local in a sandbox node.

Debian's Go bridge (1.1.1) cannot stand in here: it has no 1.1.0 verbs, and its CHECK
fails on the routes flannel adds without a gw ("Expected Route ... not found").
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from flannel_nodes import ip, run_plugin

GUIDE_ENV = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"


class FlannelNode:
    def __init__(self, box, root: str, cni_bin: str, cni_version: str) -> None:
        self.box = box
        self.cni_bin = cni_bin
        self.subnet_file = os.path.join(root, "subnet.env")
        with open(self.subnet_file, "w") as f:
            f.write(GUIDE_ENV)
        self.saved_dir = os.path.join(root, "flannel")
        self.config = {"cniVersion": cni_version, "name": "flannel-verbs", "type": "flannel",
                       "subnetFile": self.subnet_file, "dataDir": self.saved_dir,
                       "ipam": {"dataDir": os.path.join(root, "ipam")}}

    def run(self, command: str, pod: dict | None = None, expect_ok: bool = True, **extra):
        env = {"CNI_PATH": self.cni_bin}
        if pod:
            env.update(CNI_CONTAINERID=pod["cid"], CNI_NETNS=pod["netns"], CNI_IFNAME="eth0")
        return run_plugin(self.box, [os.path.join(self.cni_bin, "flannel")], command, env,
                          {**self.config, **extra}, expect_ok=expect_ok)


@pytest.fixture
def node(sandbox, tmp_path, plugin_dir):
    return FlannelNode(sandbox, str(tmp_path), plugin_dir, "1.0.0")


def test_check_passes_on_a_healthy_pod_and_reports_the_delegates_finding(node, sandbox):
    pod = {"netns": sandbox.pod(), "cid": str(uuid.uuid4())}
    result = node.run("ADD", pod).json()
    assert node.run("CHECK", pod, prevResult=result).returncode == 0
    ip(os.path.basename(pod["netns"]), "addr", "flush", "dev", "eth0")
    broken = node.run("CHECK", pod, expect_ok=False, prevResult=result)
    assert broken.returncode == 1 and "10.1.17.2" in json.loads(broken.stdout)["msg"], broken.stdout
    node.run("DEL", pod, prevResult=result)
    assert os.listdir(node.saved_dir) == []


@pytest.fixture
def node_1_1(sandbox, tmp_path, plugin_dir):
    return FlannelNode(sandbox, str(tmp_path), plugin_dir, "1.1.0")


def test_status_is_50_until_flanneld_writes_subnet_env(node_1_1):
    assert node_1_1.run("STATUS").returncode == 0
    os.remove(node_1_1.subnet_file)
    waiting = node_1_1.run("STATUS", expect_ok=False)
    assert waiting.returncode == 1 and json.loads(waiting.stdout)["code"] == 50


def test_gc_tears_down_attachments_the_runtime_no_longer_has(node_1_1, sandbox):
    node = node_1_1
    pods = [{"netns": sandbox.pod(), "cid": str(uuid.uuid4())} for _ in range(2)]
    results = [node.run("ADD", pod).json() for pod in pods]
    live, gone = pods
    valid = [{"containerID": live["cid"], "ifname": "eth0"}]
    node.run("GC", **{"cni.dev/valid-attachments": valid})
    assert sorted(os.listdir(node.saved_dir)) == [live["cid"], f"{live['cid']}@eth0"]
    reserved = os.listdir(os.path.join(os.path.dirname(node.saved_dir), "ipam", "flannel-verbs"))
    assert results[1]["ips"][0]["address"].split("/")[0] not in reserved
    assert results[0]["ips"][0]["address"].split("/")[0] in reserved
    node.run("DEL", live, prevResult=results[0])
    assert os.listdir(node.saved_dir) == []
