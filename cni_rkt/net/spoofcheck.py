"""macspoofchk: only the container's MAC may send through its bridge port (nftables, bridge family).

Names and layout are the reference's (pkg/link/spoofcheck.go), so either implementation
removes the other's rules: table `bridge nat`, base chain PREROUTING (filter hook,
priority -300), per attachment chains `cni-br-iface-<cid>-<ifname>` and `…-mac`, every
rule commented `macspoofchk-<cid>-<ifname>`. The table and base chain stay, as there.
"""

from __future__ import annotations

import json

TABLE = "nat"
BASE_CHAIN = "PREROUTING"


def attachment_id(container_id: str, ifname: str) -> str:
    return f"{container_id}-{ifname}"


def chain_names(container_id: str, ifname: str) -> tuple[str, str]:
    iface_chain = f"cni-br-iface-{attachment_id(container_id, ifname)}"
    return iface_chain, f"{iface_chain}-mac"


def comment(container_id: str, ifname: str) -> str:
    return f"macspoofchk-{attachment_id(container_id, ifname)}"


def setup_script(host_veth: str, mac: str, container_id: str, ifname: str) -> str:
    """One transaction: declare table and chains, empty ours, then the four rules."""
    iface_chain, mac_chain = chain_names(container_id, ifname)
    note = f'comment "{comment(container_id, ifname)}"'
    return "\n".join([
        f"add table bridge {TABLE}",
        f"add chain bridge {TABLE} {BASE_CHAIN} {{ type filter hook prerouting priority -300 ; policy accept ; }}",
        f"add chain bridge {TABLE} {iface_chain}",
        f"add chain bridge {TABLE} {mac_chain}",
        f"flush chain bridge {TABLE} {iface_chain}",
        f"flush chain bridge {TABLE} {mac_chain}",
        f'add rule bridge {TABLE} {BASE_CHAIN} iifname "{host_veth}" jump {iface_chain} {note}',
        f"add rule bridge {TABLE} {iface_chain} jump {mac_chain} {note}",
        f"add rule bridge {TABLE} {mac_chain} ether saddr {mac} return {note}",
        f"add rule bridge {TABLE} {mac_chain} drop {note}",
        "",
    ])


def setup_spoofcheck(host_veth: str, mac: str, container_id: str, ifname: str) -> None:
    from cni_rkt.net import firewall  # the ipMasq helper's runner of nft

    firewall.nft_apply(setup_script(host_veth, mac, container_id, ifname), dies_with_us=True)


def _table_objects() -> list[dict]:
    from cni_rkt.net import firewall

    listed = firewall.nft_list_table("bridge", TABLE)
    return json.loads(listed).get("nftables", []) if listed else []


def teardown_script(objects: list[dict], container_id: str, ifname: str) -> str:
    """Delete our jump from PREROUTING (by comment) and our two chains, whichever exist."""
    ours = set(chain_names(container_id, ifname))
    note = comment(container_id, ifname)
    lines = []
    for obj in objects:
        rule = obj.get("rule")
        if rule and rule.get("chain") == BASE_CHAIN and rule.get("comment") == note:
            lines.append(f"delete rule bridge {TABLE} {BASE_CHAIN} handle {rule['handle']}")
    for obj in objects:
        chain = obj.get("chain")
        if chain and chain.get("name") in ours:
            lines.append(f"flush chain bridge {TABLE} {chain['name']}")
    for name in chain_names(container_id, ifname)[::-1]:
        if any((o.get("chain") or {}).get("name") == name for o in objects):
            lines.append(f"delete chain bridge {TABLE} {name}")
    return "\n".join(lines + [""]) if lines else ""


def remove_spoofcheck(container_id: str, ifname: str) -> bool:
    """Tolerates absence; True when something was removed."""
    script = teardown_script(_table_objects(), container_id, ifname)
    if script:
        from cni_rkt.net import firewall

        firewall.nft_apply(script)
    return bool(script)


def spoofcheck_problems(host_veth: str, mac: str, container_id: str, ifname: str) -> list[str]:
    """For CHECK: what is missing of this attachment's rules."""
    objects = _table_objects()
    note = comment(container_id, ifname)
    iface_chain, mac_chain = chain_names(container_id, ifname)
    rules = [o["rule"] for o in objects if "rule" in o and o["rule"].get("comment") == note]
    problems = []
    if not any(r["chain"] == BASE_CHAIN and host_veth in json.dumps(r.get("expr")) for r in rules):
        problems.append(f"no {BASE_CHAIN} rule sends {host_veth} to {iface_chain}")
    if not any(r["chain"] == mac_chain and mac in json.dumps(r.get("expr")) for r in rules):
        problems.append(f"chain {mac_chain} does not let {mac} through")
    if not any(r["chain"] == mac_chain and "drop" in json.dumps(r.get("expr")) for r in rules):
        problems.append(f"chain {mac_chain} does not drop other MACs")
    return problems
