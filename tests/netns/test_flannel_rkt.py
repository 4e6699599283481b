"""The rkt guide's flannel net.d file, invoked exactly as rkt invokes it.

rkt (networking/net_plugin.go) execs the plugin with the raw bytes of the .conf file on
stdin, CNI_VERSION=0.1.0, CNI_IFNAME=eth0, the pod UUID as CNI_CONTAINERID, a netns
bind-mounted at /var/run/netns/cni-<random hex>, and a three-entry CNI_PATH:
<localConfig>/net.d : /usr/lib/rkt/plugins/net : <stage1>/usr/lib/rkt/plugins/net.
It reads only `ip4` from the result.

The file has no subnetFile/dataDir keys, so the plugin uses its defaults,
/run/flannel/subnet.env and /var/lib/cni/flannel (and host-local /var/lib/cni/networks).
The test does not touch the machine's real directories: each plugin run happens in a
private mount namespace (unshare -m inside `ip netns exec`) in which /run and /var/lib
are fresh tmpfs, /run/netns is carried over, and /run/flannel and /var/lib/cni are bind
mounts of the test's temp dirs, so state persists from ADD to DEL and can be inspected.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import uuid

import pytest
from flannel_nodes import BASE_ENV, ping, reservations, without_bridge

from cni_rkt.launcher import install_launchers
from cni_rkt.worker.control import stop_workers
from sandbox import Sandbox, create_netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces")
WORKER_DIR = "workers"


@pytest.fixture(autouse=True)
def end_workers(tmp_path):
    """The launchers' worker, started by the first exec, is ended by PID after each test."""
    yield
    stop_workers(os.path.join(str(tmp_path), WORKER_DIR))


EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
NET_D_FILE = os.path.join(EXAMPLES, "rkt-flannel", "net.d", "10-rkt.kubernetes.io.conf")
SUBNET_ENV = os.path.join(EXAMPLES, "flannel", "subnet.env")

# Runs as `sh -c SCRIPT sh <scratch> <run-flannel dir> <var-lib-cni dir> <plugin>`.
PRIVATE_DEFAULT_DIRS = r"""
set -e
scratch=$1 flannel_dir=$2 cni_dir=$3; shift 3
mount --rbind /run/netns "$scratch"
mount -t tmpfs -o mode=0755 cni-rkt-test /run
mkdir /run/netns /run/flannel
mount --move "$scratch" /run/netns
mount --bind "$flannel_dir" /run/flannel
mount -t tmpfs -o mode=0755 cni-rkt-test /var/lib
mkdir /var/lib/cni
mount --bind "$cni_dir" /var/lib/cni
exec "$@"
"""


class RktNode:
    """A sandbox host with rkt's plugin dirs and the default flannel/CNI dirs in temp dirs."""

    def __init__(self, box: Sandbox, root: str) -> None:
        self.box = box
        self.root = root
        self.local_config = os.path.join(root, "etc-rkt")
        self.plugin_dirs = [
            os.path.join(self.local_config, "net.d"),
            os.path.join(root, "usr-lib-rkt-plugins-net"),
            os.path.join(root, "stage1", "usr", "lib", "rkt", "plugins", "net"),
        ]
        for directory in self.plugin_dirs:
            os.makedirs(directory)
        shutil.copy(NET_D_FILE, self.plugin_dirs[0])
        # flannel, bridge, host-local: where an operator installs them; their worker's socket is ours
        install_launchers(self.plugin_dirs[1], worker_socket_dir=os.path.join(root, WORKER_DIR))
        self.run_flannel = os.path.join(root, "run-flannel")
        self.var_lib_cni = os.path.join(root, "var-lib-cni")
        self.scratch = os.path.join(root, "scratch")
        for directory in (self.run_flannel, self.var_lib_cni, self.scratch):
            os.makedirs(directory)
        shutil.copy(SUBNET_ENV, os.path.join(self.run_flannel, "subnet.env"))

    def find_plugin(self, plugin_type: str) -> str:
        """rkt's findNetPlugin: the first CNI_PATH entry holding a file of that name."""
        candidates = (os.path.join(directory, plugin_type) for directory in self.plugin_dirs)
        return next(path for path in candidates if os.path.isfile(path))

    def exec_plugin(self, command: str, pod_uuid: str, netns: str):
        with open(NET_D_FILE, "rb") as f:
            conf_bytes = f.read()
        plugin = self.find_plugin(json.loads(conf_bytes)["type"])
        env = {
            **BASE_ENV,
            "CNI_VERSION": "0.1.0",
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": pod_uuid,
            "CNI_NETNS": netns,
            "CNI_ARGS": "",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": ":".join(self.plugin_dirs),
        }
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PRIVATE_DEFAULT_DIRS, "sh",
                self.scratch, self.run_flannel, self.var_lib_cni, plugin]
        return self.box.run(argv, env=env, stdin=conf_bytes)


def rkt_netns_name(box: Sandbox) -> str:
    """cni-<uuid-shaped hex> as CNI's ns.NewNS names it, starting with the sandbox's unique hex."""
    raw = box.prefix.removeprefix("cnr") + secrets.token_hex(13)
    return f"cni-{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"


def rkt_ip4(stdout: bytes) -> dict | None:
    """What rkt records from a result: its `ip4` (a 0.3+ result gives it nothing)."""
    return json.loads(stdout).get("ip4")


def test_guide_flannel_conf_as_rkt_runs_it(sandbox, tmp_path):
    node = RktNode(sandbox, str(tmp_path))
    netns_name = rkt_netns_name(sandbox)
    netns = create_netns(netns_name)
    sandbox.pods.append(netns_name)  # removed by the sandbox fixture, also on failure
    pod_uuid = str(uuid.uuid4())
    saved_dir = os.path.join(node.var_lib_cni, "flannel")
    before = sandbox.snapshot((saved_dir,))

    added = node.exec_plugin("ADD", pod_uuid, netns)
    assert added.returncode == 0, (added.stdout, added.stderr.decode(errors="replace")[-2000:])
    ip4 = rkt_ip4(added.stdout)
    assert ip4 is not None and ip4["ip"].startswith("10.1.17.") and ip4["ip"].endswith("/24"), added.stdout
    assert ip4["gateway"] == "10.1.17.1"
    assert {"dst": "10.1.0.0/16"} in ip4["routes"]
    assert sorted(os.listdir(saved_dir)) == [pod_uuid, f"{pod_uuid}@eth0"]
    with open(os.path.join(saved_dir, f"{pod_uuid}@eth0")) as f:
        delegate = json.load(f)
    assert (delegate["type"], delegate["isDefaultGateway"]) == ("bridge", True)
    assert (delegate["ipMasq"], delegate["mtu"]) == (False, 1450)  # from the guide's subnet.env
    assert reservations(os.path.join(node.var_lib_cni, "networks", "rkt.kubernetes.io")) == [ip4["ip"].split("/")[0]]
    assert ping(sandbox, netns_name, "10.1.17.1")

    deleted = node.exec_plugin("DEL", pod_uuid, netns)
    assert (deleted.returncode, deleted.stdout) == (0, b""), deleted.stderr.decode(errors="replace")[-2000:]
    assert without_bridge(sandbox.snapshot((saved_dir,)), "cni0") == without_bridge(before, "cni0")
    assert reservations(os.path.join(node.var_lib_cni, "networks", "rkt.kubernetes.io")) == []

    again = node.exec_plugin("DEL", pod_uuid, netns)  # rkt gc may tear down twice
    assert again.returncode == 0


def test_rkt_add_before_flanneld_wrote_subnet_env_is_try_again_later(sandbox, tmp_path):
    node = RktNode(sandbox, str(tmp_path))
    os.remove(os.path.join(node.run_flannel, "subnet.env"))
    netns_name = rkt_netns_name(sandbox)
    netns = create_netns(netns_name)
    sandbox.pods.append(netns_name)
    before = sandbox.snapshot()
    failed = node.exec_plugin("ADD", str(uuid.uuid4()), netns)
    assert failed.returncode == 1
    error = json.loads(failed.stdout)
    assert error["code"] == 11 and "/run/flannel/subnet.env" in error["msg"]  # rkt shows "msg; details"
    assert sandbox.snapshot() == before
    assert os.listdir(node.var_lib_cni) == []
