"""Throwaway network namespaces for tests, benchmarks and the demo.

A `Sandbox` is a fresh "host" netns (where the plugins run, so the bridge, the host
veths and the firewall rules land there) plus pod namespaces, each bind-mounted under
/var/run/netns with a unique prefix. The machine's own namespace is never touched:
plugins run through `ip netns exec <host>`. `close()` removes every namespace the
sandbox made, also after a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field

NETNS_DIR = "/var/run/netns"
EXPECT_VLAN_FILTERING = "CNI_RKT_TEST_EXPECT_VLAN_FILTERING"  # set by tests/vm


def _ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["ip", *(("-n", netns) if netns else ()), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def create_netns(name: str) -> str:
    _ip("netns", "add", name)
    _ip("link", "set", "lo", "up", netns=name)
    return os.path.join(NETNS_DIR, name)


def delete_netns(name: str) -> None:
    _ip("netns", "del", name, check=False)


@dataclass
class PluginRun:
    stdout: bytes
    stderr: bytes
    returncode: int

    def json(self) -> dict:
        return json.loads(self.stdout)


@dataclass
class Sandbox:
    prefix: str = field(default_factory=lambda: "cnr" + secrets.token_hex(3))
    pods: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.host = f"{self.prefix}-host"
        self.host_path = create_netns(self.host)

    def pod(self, suffix: str | None = None) -> str:
        """Create a pod netns; return its path (what a runtime passes as CNI_NETNS)."""
        name = f"{self.prefix}-pod{suffix if suffix is not None else len(self.pods)}"
        path = create_netns(name)
        self.pods.append(name)
        return path

    def remove_pod(self, path: str) -> None:
        name = os.path.basename(path)
        delete_netns(name)
        if name in self.pods:
            self.pods.remove(name)

    def run(self, argv: list[str], env: dict[str, str] | None = None, stdin: bytes = b"",
            netns: str | None = None, timeout: float = 60) -> PluginRun:
        """Run a command inside the sandbox host netns (or `netns`, a name)."""
        full = ["ip", "netns", "exec", netns or self.host, *argv]
        proc = subprocess.run(full, input=stdin, env=env, capture_output=True, timeout=timeout, check=False)
        return PluginRun(proc.stdout, proc.stderr, proc.returncode)

    def sh(self, command: str, netns: str | None = None) -> str:
        proc = subprocess.run(["ip", "netns", "exec", netns or self.host, "sh", "-c", command],
                              capture_output=True, text=True, check=True)
        return proc.stdout

    def has_vlan_filtering(self) -> bool:
        """Whether this kernel's bridges filter VLANs (this machine's does not). tests/vm runs the
        VLAN tests on one that does, with EXPECT_VLAN_FILTERING set: a kernel without then fails
        the test instead of sending it down the branch for such kernels."""
        probe = self.run(["ip", "link", "add", "vlprobe0", "type", "bridge", "vlan_filtering", "1"])
        self.run(["ip", "link", "del", "vlprobe0"])
        assert probe.returncode == 0 or os.environ.get(EXPECT_VLAN_FILTERING) != "1", probe.stderr
        return probe.returncode == 0

    def snapshot(self, data_dirs: tuple[str, ...] = ()) -> dict:
        """What ADD may change and DEL must restore: links, addresses, routes, rules, IPAM files."""
        state: dict = {}
        for ns in (self.host, *self.pods):
            links = json.loads(_ip("-j", "link", "show", netns=ns).stdout or "[]")
            addrs = json.loads(_ip("-j", "addr", "show", netns=ns).stdout or "[]")
            state[ns] = {
                "links": sorted((l["ifname"], l.get("link_type", "")) for l in links),
                "addrs": sorted(
                    (a["ifname"], i["local"], i["prefixlen"])
                    for a in addrs for i in a.get("addr_info", []) if i.get("scope") != "link"
                ),
                "routes4": sorted(_ip("-4", "route", "show", "table", "all", netns=ns).stdout.splitlines()),
                "routes6": sorted(
                    r for r in _ip("-6", "route", "show", "table", "all", netns=ns).stdout.splitlines()
                    if " fe80::" not in r and not r.startswith("fe80::") and "multicast" not in r
                    and not r.startswith("local fe80") and not r.startswith("anycast fe80")
                ),
            }
        state["iptables"] = _rules(self.sh("iptables-save 2>/dev/null || true"))
        state["ip6tables"] = _rules(self.sh("ip6tables-save 2>/dev/null || true"))
        state["nft"] = self.sh("nft list ruleset 2>/dev/null || true")
        state["files"] = {d: sorted(_walk(d)) for d in data_dirs}
        return state

    def close(self) -> None:
        for name in list(self.pods):
            delete_netns(name)
        self.pods.clear()
        delete_netns(self.host)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rules(save_output: str) -> list[str]:
    """iptables-save output without comments and counters, which change on their own."""
    return [
        line.split(" [")[0] if line.startswith(":") else line
        for line in save_output.splitlines()
        if line and not line.startswith("#")
    ]


def _walk(directory: str) -> list[str]:
    out = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            out.append(os.path.relpath(os.path.join(root, name), directory))
    return out
