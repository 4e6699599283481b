"""The demo's throwaway namespaces: a sandbox "host" netns where the plugins run, and pods.

The machine's own network namespace is never changed: every plugin and every ping runs
through `ip netns exec`. `DemoSandbox.close()` removes all it made, also after a failure.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field

NETNS_DIR = "/var/run/netns"
NAME_PREFIX = "cnrdemo"
# ipMasq leaves the nat table's built-in chains once it has created the table, as the
# reference does; only user chains (policy "-") and rules count as left behind.
_BUILTIN_POLICIES = (" ACCEPT", " DROP")


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


@dataclass
class DemoSandbox:
    prefix: str = field(default_factory=lambda: NAME_PREFIX + secrets.token_hex(3))
    made: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"{self.prefix}-host"

    def create_netns(self, suffix: str) -> str:
        """Create `<prefix>-<suffix>` with lo up; return its path (a runtime's CNI_NETNS)."""
        name = f"{self.prefix}-{suffix}"
        _ip("netns", "add", name)
        self.made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return f"{NETNS_DIR}/{name}"

    def run(self, argv: list[str], netns: str | None = None, env: dict | None = None,
            stdin: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", netns or self.host, *argv], input=stdin, env=env,
                              capture_output=True, timeout=timeout, check=False)

    def _text(self, argv: list[str]) -> str:
        return self.run(argv).stdout.decode()

    def snapshot(self, data_dir: str) -> dict[str, list[str]]:
        """The host-side state a pod's ADD creates and its DEL must remove."""
        links = json.loads(self._text(["ip", "-d", "-j", "link", "show"]) or "[]")
        addrs = json.loads(self._text(["ip", "-j", "addr", "show"]) or "[]")
        rules = self._text(["sh", "-c", "iptables-save -t nat; ip6tables-save -t nat"]).splitlines()
        files = self._text(["find", data_dir, "-type", "f", "-printf", "%P\\n"]).split()
        return {
            "links": sorted(f"{l['ifname']} ({l.get('linkinfo', {}).get('info_kind', 'device')})" for l in links),
            "addresses": sorted(
                f"{a['ifname']} {i['local']}/{i['prefixlen']}"
                for a in addrs for i in a.get("addr_info", []) if i.get("scope") == "global"
            ),
            "routes": sorted(r.strip() for r in self._text(["ip", "route", "show"]).splitlines()),
            "ipMasq chains and rules": [
                r for r in rules
                if r.startswith("-A") or (r.startswith(":") and not r.split(" [")[0].endswith(_BUILTIN_POLICIES))
            ],
            "IPAM reservations": sorted(f for f in files if _is_address(os.path.basename(f))),
        }

    def close(self) -> list[str]:
        """Delete every namespace made, newest first; return the names removed."""
        removed = []
        while self.made:
            name = self.made.pop()
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            removed.append(name)
        return removed


def _is_address(name: str) -> bool:
    """host-local names a reservation by its address (':' as '_' on Windows-made stores)."""
    try:
        ipaddress.ip_address(name.replace("_", ":"))
        return True
    except ValueError:
        return False


def changes(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    """What `after` has that `before` had not, per kind ("+ x"), and what it lost ("- x")."""
    out = {}
    for kind in before:
        added = [f"+ {x}" for x in after[kind] if x not in before[kind]]
        lost = [f"- {x}" for x in before[kind] if x not in after[kind]]
        if added or lost:
            out[kind] = added + lost
    return out
