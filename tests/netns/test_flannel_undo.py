"""A flannel ADD whose delegate fails leaves the node exactly as it was.

The node's subnet is a /30: host-local can hand out one address (the other is the
gateway), so the second pod's ADD fails inside the delegate, after the bridge may have
made its veth. flannel then runs the delegate's DEL and forgets its saved config; the
reference flannel leaves both to the runtime (and the Go bridge leaks the veth until then).
"""

from __future__ import annotations

import json
import os
import uuid

from flannel_nodes import (
    cni_firewall_rules,
    pod_ipv4,
    reservations,
    run_plugin,
    without_bridge,
    without_firewall,
)

NETWORK = "flannel-tiny"


def test_failed_delegate_add_leaves_nothing_and_the_first_pod_keeps_its_address(sandbox, tmp_path, plugin_dir):
    cni_bin = plugin_dir
    subnet_file = tmp_path / "subnet.env"
    subnet_file.write_text(
        "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.9.1/30\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n"
    )
    saved_dir, ipam_dir = str(tmp_path / "flannel"), str(tmp_path / "ipam")
    config = {"cniVersion": "1.0.0", "name": NETWORK, "type": "flannel", "subnetFile": str(subnet_file),
              "dataDir": saved_dir, "ipam": {"dataDir": ipam_dir}}
    flannel = [os.path.join(cni_bin, "flannel")]
    pods = [{"netns": sandbox.pod(), "cid": str(uuid.uuid4())} for _ in range(2)]

    def env(pod):
        return {"CNI_CONTAINERID": pod["cid"], "CNI_NETNS": pod["netns"], "CNI_IFNAME": "eth0", "CNI_PATH": cni_bin}

    untouched = sandbox.snapshot((saved_dir,))
    first = pod_ipv4(run_plugin(sandbox, flannel, "ADD", env(pods[0]), config).json())
    before = sandbox.snapshot((saved_dir,))
    assert cni_firewall_rules(before)  # the delegate masquerades: FLANNEL_IPMASQ=false

    failed = run_plugin(sandbox, flannel, "ADD", env(pods[1]), config, expect_ok=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["msg"], failed.stdout
    assert sandbox.snapshot((saved_dir,)) == before  # masquerade rules included
    assert sorted(os.listdir(saved_dir)) == [pods[0]["cid"], f"{pods[0]['cid']}@eth0"]
    assert reservations(os.path.join(ipam_dir, NETWORK)) == [first]

    run_plugin(sandbox, flannel, "DEL", env(pods[1]), config)  # the runtime's DEL after a failed ADD
    run_plugin(sandbox, flannel, "DEL", env(pods[0]), config)
    assert os.listdir(saved_dir) == [] and reservations(os.path.join(ipam_dir, NETWORK)) == []
    final = without_bridge(sandbox.snapshot((saved_dir,)), "cni0")
    assert without_firewall(final) == without_firewall(without_bridge(untouched, "cni0"))
    assert cni_firewall_rules(final) == []  # an emptied nat table may stay, as the bridge does
