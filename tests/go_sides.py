"""Two implementations side by side: Debian's Go plugins (/usr/lib/cni) and ours, each in its own
sandbox with its own data dir, and the host state compared without what is random (veth names,
MACs, counters, the sandbox's prefix). Used by tests/reference/."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import time
from dataclasses import dataclass, field

from plugin_calls import run_plugin
from sandbox import PluginRun, Sandbox

CID = "cid1"
# The rkt guide's network (examples/rkt/net.d), with a per-sandbox dataDir.
RKT_CONFIG = {
    "name": "rkt.kubernetes.io", "type": "bridge", "bridge": "mybridge", "mtu": 1460, "addIf": "true",
    "isGateway": True, "ipMasq": True,
    "ipam": {"type": "host-local", "subnet": "10.22.0.0/16", "gateway": "10.22.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
}


@dataclass
class Side:
    """One implementation in its own sandbox: a plugin directory, a host netns, a data dir."""

    name: str
    plugin_dir: str
    data_dir: str
    sandbox: Sandbox = field(default_factory=Sandbox)

    def config(self, base: dict | None = None, **changes) -> dict:
        config = copy.deepcopy(base or RKT_CONFIG)
        if "ipam" in config:
            config["ipam"]["dataDir"] = self.data_dir
        for key, value in changes.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        return config

    def cni(self, command: str, config: dict, pod: str, cid: str = CID, ifname: str = "eth0",
            plugin_dir: str | None = None, plugin: str = "bridge", **env: str) -> PluginRun:
        directory = plugin_dir or self.plugin_dir
        return run_plugin(self.sandbox, directory, plugin, command, config, cid, pod, ifname, **env)

    def added_pod(self, config: dict) -> tuple[str, dict]:
        """A new pod ADDed with `config`: its netns and the ADD's result."""
        pod = self.sandbox.pod()
        added = self.cni("ADD", config, pod)
        assert added.returncode == 0, f"{self.name} ADD: {added.stdout!r}"
        return pod, added.json()

    def state(self) -> dict:
        """The sandbox's links, addresses, routes, rules and IPAM files, without what is random."""
        self.settle()
        snapshot = self.sandbox.snapshot((self.data_dir,))
        # host-local's own files only: ours may keep a rebuildable index in a dot-directory.
        snapshot["files"] = [f for f in snapshot["files"][self.data_dir] if not f.startswith(".")]
        return json.loads(normalise(json.dumps(snapshot, sort_keys=True), self.sandbox.prefix))


    def settle(self, attempts: int = 100) -> None:
        """Wait until IPv6 duplicate address detection is over on the host side (the kernel
        adds an address's local route only then), so both sides are compared at rest."""
        for _ in range(attempts):
            if not self.sandbox.sh("ip -6 addr show tentative").strip():
                return
            time.sleep(0.1)


def reservations(state: dict) -> list[str]:
    """host-local's reservation files: one per address, named by it."""
    found = []
    for path in state["files"]:
        try:
            ipaddress.ip_address(path.rsplit("/", 1)[-1])
            found.append(path)
        except ValueError:
            pass
    return found


def normalise(text: str, prefix: str) -> str:
    text = text.replace(prefix, "SANDBOX")
    text = re.sub(r"veth[0-9a-f]{8}", "vethXXXXXXXX", text)
    text = re.sub(r'"mac": "[0-9a-f:]{17}"', '"mac": "MAC"', text)
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", text)
    return text.replace(" linkdown", "")  # a bridge's carrier follows its ports a moment late
