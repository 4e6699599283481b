"""Running the bridge plugin as a runtime would, inside a sandbox host netns."""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field

BASE_CONFIG = {
    "cniVersion": "1.0.0",
    "name": "testnet",
    "type": "bridge",
    "bridge": "tbr0",
    "isGateway": True,
    "ipMasq": False,
    "ipam": {"type": "host-local", "subnet": "10.22.0.0/16", "routes": [{"dst": "0.0.0.0/0"}]},
}


@dataclass
class Bridge:
    """One network config and the verbs on it, run inside `sandbox`'s host netns."""

    sandbox: object
    bin_dir: str
    data_dir: str
    config: dict = field(default_factory=lambda: copy.deepcopy(BASE_CONFIG))

    def __post_init__(self) -> None:
        if isinstance(self.config.get("ipam"), dict) and self.config["ipam"].get("type"):
            self.config["ipam"].setdefault("dataDir", self.data_dir)

    def env(self, command: str, netns: str | None, cid: str, ifname: str, **extra) -> dict:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_IFNAME": ifname,
               "CNI_PATH": self.bin_dir, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        if netns is not None:
            env["CNI_NETNS"] = netns
        env.update(extra)
        return env

    def run(self, command: str, netns: str | None, cid: str = "cid1", ifname: str = "eth0",
            config: dict | None = None, stdin: bytes | None = None, **extra):
        data = stdin if stdin is not None else json.dumps(config or self.config).encode()
        env = self.env(command, netns, cid, ifname, **extra)
        return self.sandbox.run([os.path.join(self.bin_dir, "bridge")], env=env, stdin=data)

    def add(self, netns: str, cid: str = "cid1", ifname: str = "eth0", **kw) -> dict:
        done = self.run("ADD", netns, cid, ifname, **kw)
        assert done.returncode == 0, (done.stdout, done.stderr)
        return done.json()

    def with_prev(self, result: dict) -> dict:
        return {**self.config, "prevResult": result}

    def delete(self, netns: str | None, cid: str = "cid1", ifname: str = "eth0", **kw) -> None:
        done = self.run("DEL", netns, cid, ifname, **kw)
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert done.stdout == b""

    def reservations(self) -> list[str]:
        directory = os.path.join(self.data_dir, self.config["name"])
        if not os.path.isdir(directory):
            return []
        return sorted(n for n in os.listdir(directory) if n != "lock" and not n.startswith("last_reserved_ip"))

    def state(self) -> dict:
        """The sandbox snapshot with host-local's reservations (not its lock and cursor files)."""
        snap = self.sandbox.snapshot()
        snap["reservations"] = self.reservations()
        return snap

    def state_without_bridge(self) -> dict:
        """After DEL the bridge stays, as with the reference; drop it and compare the rest."""
        self.sandbox.sh(f"ip link del {self.config.get('bridge', 'cni0')} 2>/dev/null || true")
        return self.state()


def remove_pod_with_veth(sandbox, path: str, host_veth: str, attempts: int = 200) -> None:
    """Delete a pod netns that still holds its veth end, then wait (bounded) until the host end
    is gone too: `ip netns del` returns before the kernel has destroyed the namespace."""
    sandbox.remove_pod(path)
    for _ in range(attempts):
        if sandbox.run(["ip", "link", "show", host_veth]).returncode != 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{host_veth} outlived its pod's netns")


def ip_json(sandbox, args: str, netns: str | None = None) -> list:
    return json.loads(sandbox.sh(f"ip -j {args}", netns=netns) or "[]")


def link_details(sandbox, name: str, netns: str | None = None) -> dict:
    return ip_json(sandbox, f"-d link show {name}", netns)[0]


def pod_name(path: str) -> str:
    return os.path.basename(path)
