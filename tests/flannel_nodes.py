"""Helpers for the flannel root tests: plugin runs, and what DEL may leave.

Imported by the flannel tests (tests/conftest.py puts tests/ on sys.path).
"""

from __future__ import annotations

import json
import os
import subprocess

from sandbox import PluginRun, Sandbox

# A runtime's environment is minimal; the plugins still need PATH for iproute2/iptables.
BASE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def ip(netns: str, *args: str) -> None:
    """iproute2 inside one of our namespaces (never the machine's own)."""
    subprocess.run(["ip", "-n", netns, *args], check=True, capture_output=True)


def run_plugin(
    box: Sandbox, argv: list[str], command: str, env: dict, config: bytes | dict, expect_ok: bool = True
) -> PluginRun:
    """One exec of a plugin inside the sandbox host netns, as a runtime execs it."""
    stdin = config if isinstance(config, bytes) else json.dumps(config).encode()
    run = box.run(argv, env={**BASE_ENV, **env, "CNI_COMMAND": command}, stdin=stdin)
    if expect_ok:
        assert run.returncode == 0, f"{command} failed: {run.stdout!r} {run.stderr.decode(errors='replace')[-2000:]}"
    return run


def without_bridge(snapshot: dict, bridge: str) -> dict:
    """A snapshot minus the bridge device, its addresses and routes.

    The reference bridge plugin never deletes its bridge (its gateway address and connected
    route stay for the next pod); that is the one thing DEL may leave behind.
    """
    out = dict(snapshot)
    for ns, state in snapshot.items():
        if not isinstance(state, dict) or "links" not in state:
            continue
        out[ns] = {
            "links": [link for link in state["links"] if link[0] != bridge],
            "addrs": [addr for addr in state["addrs"] if addr[0] != bridge],
            "routes4": [r for r in state["routes4"] if f"dev {bridge} " not in f"{r} "],
            "routes6": [r for r in state["routes6"] if f"dev {bridge} " not in f"{r} "],
        }
    return out


FIREWALL_KEYS = ("iptables", "ip6tables", "nft")


def without_firewall(snapshot: dict) -> dict:
    return {key: value for key, value in snapshot.items() if key not in FIREWALL_KEYS}


def cni_firewall_rules(snapshot: dict) -> list[str]:
    """The masquerade rules a bridge made (chains named CNI-...); an emptied nat table is not one."""
    lines = snapshot["iptables"] + snapshot["ip6tables"] + snapshot["nft"].splitlines()
    return [line for line in lines if "CNI-" in line]


def reservations(ipam_network_dir: str) -> list[str]:
    """host-local's reserved IPs (its lock and last_reserved_ip files are not reservations)."""
    if not os.path.isdir(ipam_network_dir):
        return []
    return sorted(n for n in os.listdir(ipam_network_dir) if n != "lock" and not n.startswith("last_reserved_ip"))


def pod_ipv4(result: dict) -> str:
    """The pod's IPv4 address without prefix, from a 0.3+ result."""
    return next(ip["address"] for ip in result["ips"] if ":" not in ip["address"]).split("/")[0]


def ping(box: Sandbox, pod_netns_name: str, address: str) -> bool:
    run = box.run(["ping", "-c", "1", "-W", "2", address], netns=pod_netns_name)
    return run.returncode == 0
