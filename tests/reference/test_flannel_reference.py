"""Our flannel side by side with what the reference flannel would print.

Debian does not package the reference flannel binary. The reference flannel hands its
delegate the config of ../shared/reference/cni-spec-and-reference-plugins.md §2.3 and prints
the delegate's result in the same version (`result.Print()`). So "the reference flannel"
here is Debian's Go bridge run directly with that documented delegate config (written out
by hand below, not computed by our code), in one sandbox; ours is our flannel delegating to
the same Go bridge in another. stdout must match byte for byte, after replacing what is
random per run (MAC addresses, the host veth's name, the pod netns path).
"""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest

from sandbox import Sandbox

GO_PLUGIN_DIR = "/usr/lib/cni"
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces"),
    pytest.mark.skipif(
        not os.path.exists(os.path.join(GO_PLUGIN_DIR, "bridge")),
        reason="reference Go plugins not installed (apt-get install containernetworking-plugins)",
    ),
]

SUBNET_ENV = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_IFNAME": "eth0"}


def reference_delegate(cni_version: str | None, ipam_dir: str) -> dict:
    """§2.3 for the guide's flannel file + subnet.env (+ an ipam.dataDir so no real dir is used)."""
    delegate = {
        "name": "rkt.kubernetes.io",
        "type": "bridge",  # default type
        "isDefaultGateway": True,  # from `delegate`
        "ipMasq": False,  # !FLANNEL_IPMASQ
        "mtu": 1450,  # FLANNEL_MTU
        "isGateway": True,  # default for bridge
        "ipam": {
            "type": "host-local",  # default ipam type
            "dataDir": ipam_dir,  # from the flannel config's ipam
            "ranges": [[{"subnet": "10.1.17.0/24"}]],  # FLANNEL_SUBNET as a network
            "routes": [{"dst": "10.1.0.0/16"}],  # one per FLANNEL_NETWORK
        },
    }
    if cni_version:
        delegate["cniVersion"] = cni_version  # copied only when the flannel config has one
    return delegate


def normalise(stdout: bytes, box: Sandbox) -> str:
    text = stdout.decode()
    text = re.sub(r'"([0-9a-f]{2}:){5}[0-9a-f]{2}"', '"<mac>"', text)
    text = re.sub(r'"veth[0-9a-f]{8}"', '"<veth>"', text)
    return text.replace(box.prefix, "<sandbox>")


def run_add(box: Sandbox, executable: str, stdin: bytes, cni_path: str = GO_PLUGIN_DIR) -> tuple[bytes, int]:
    env = {**ENV, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": str(uuid.uuid4()), "CNI_NETNS": box.pod("0"),
           "CNI_PATH": cni_path}
    run = box.run([executable], env=env, stdin=stdin)
    return run.stdout, run.returncode


@pytest.mark.parametrize("cni_version", [None, "0.2.0", "0.3.1", "1.0.0"])
def test_result_matches_the_reference_flannel(cni_version, tmp_path, plugin_dir):
    subnet_file = tmp_path / "subnet.env"
    subnet_file.write_text(SUBNET_ENV)
    flannel_config = {
        "name": "rkt.kubernetes.io",
        "type": "flannel",
        "subnetFile": str(subnet_file),
        "dataDir": str(tmp_path / "flannel"),
        "delegate": {"isDefaultGateway": True},
        "ipam": {"dataDir": str(tmp_path / "ipam-ours")},
    }
    if cni_version:
        flannel_config["cniVersion"] = cni_version
    go_stdin = json.dumps(reference_delegate(cni_version, str(tmp_path / "ipam-go"))).encode()

    with Sandbox() as reference_box, Sandbox() as our_box:
        expected, expected_code = run_add(reference_box, os.path.join(GO_PLUGIN_DIR, "bridge"), go_stdin)
        # Our flannel finds the Go bridge and host-local first on CNI_PATH.
        ours, our_code = run_add(our_box, os.path.join(plugin_dir, "flannel"), json.dumps(flannel_config).encode(),
                                 cni_path=f"{GO_PLUGIN_DIR}:{plugin_dir}")
        assert (expected_code, our_code) == (0, 0), (expected, ours)
        assert normalise(ours, our_box) == normalise(expected, reference_box)

