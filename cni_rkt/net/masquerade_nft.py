"""The nftables form of ipMasq as data: the reference's transaction, and its rules read back.

Pure: nothing here runs `nft`. The reference (ipMasqBackend "nftables") keeps one table,
`inet cni_plugins_masquerade`: a nat `postrouting` chain that skips multicast and jumps to
`masq_checks`, where each attachment has one rule per address

    ip saddr == <address> ip daddr != <subnet> masquerade comment "<instance hash>, net: .., if: .., id: .."

found again by the hash at the start of its comment (see masquerade_names).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass

from cni_rkt.net.masquerade_names import (
    NFT_MASQ_CHAIN,
    NFT_MASQ_CHAIN_COMMENT,
    NFT_POSTROUTING_CHAIN,
    NFT_TABLE,
    NFT_TABLE_COMMENT,
    nft_comment,
    nft_network_hash,
)

_TABLE = f"inet {NFT_TABLE}"
_SRCNAT_PRIORITY = 100  # "srcnat", written as a number as the reference does for old nft


@dataclass(frozen=True, slots=True)
class NftRule:
    chain: str
    handle: int
    comment: str
    expr: tuple  # nft's JSON statements, kept for CHECK


def _family_keyword(interface) -> str:
    return "ip" if interface.version == 4 else "ip6"


def masq_rule_text(interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> str:
    ip = _family_keyword(interface)
    return f"{ip} saddr == {interface.ip} {ip} daddr != {interface.network} masquerade"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_setup(interfaces: Iterable, comment: str, stale_handles: Iterable[int]) -> str:
    """One `nft -f -` transaction: ensure the table and chains, reset postrouting, replace
    this attachment's rules (stale ones by handle) with one rule per address."""
    lines = [
        f"add table {_TABLE} {{ comment {_quote(NFT_TABLE_COMMENT)} ; }}",
        f"add chain {_TABLE} {NFT_MASQ_CHAIN} {{ comment {_quote(NFT_MASQ_CHAIN_COMMENT)} ; }}",
        f"add chain {_TABLE} {NFT_POSTROUTING_CHAIN} {{ type nat hook postrouting priority {_SRCNAT_PRIORITY} ; }}",
        f"flush chain {_TABLE} {NFT_POSTROUTING_CHAIN}",
        f"add rule {_TABLE} {NFT_POSTROUTING_CHAIN} ip daddr == 224.0.0.0/4 return",
        f"add rule {_TABLE} {NFT_POSTROUTING_CHAIN} ip6 daddr == ff00::/8 return",
        f"add rule {_TABLE} {NFT_POSTROUTING_CHAIN} goto {NFT_MASQ_CHAIN}",
    ]
    lines += [f"delete rule {_TABLE} {NFT_MASQ_CHAIN} handle {h}" for h in stale_handles]
    lines += [f"add rule {_TABLE} {NFT_MASQ_CHAIN} {masq_rule_text(i)} comment {_quote(comment)}" for i in interfaces]
    return "\n".join(lines) + "\n"


def render_delete(handles: Iterable[int]) -> str:
    return "".join(f"delete rule {_TABLE} {NFT_MASQ_CHAIN} handle {h}\n" for h in handles)


def parse_table(json_text: str) -> list[NftRule]:
    """The rules in `nft -j list table inet cni_plugins_masquerade` output."""
    rules = []
    for item in json.loads(json_text).get("nftables", []):
        rule = item.get("rule")
        if rule:
            rules.append(NftRule(rule["chain"], int(rule["handle"]), rule.get("comment", ""), tuple(rule["expr"])))
    return rules


def rules_with_prefix(rules: list[NftRule], prefix: str) -> list[NftRule]:
    return [r for r in rules if r.chain == NFT_MASQ_CHAIN and r.comment.startswith(prefix)]


def stale_handles(rules: list[NftRule], network: str, valid: set[tuple[str, str]]) -> list[int]:
    """GC: this network's rules whose comment belongs to no valid (container id, ifname)."""
    keep = {nft_comment(network, ifname, cid) for cid, ifname in valid}
    return [r.handle for r in rules_with_prefix(rules, nft_network_hash(network)) if r.comment not in keep]


def _matches_address(rule: NftRule, interface) -> bool:
    proto = _family_keyword(interface)
    saddr = {"op": "==", "left": {"payload": {"protocol": proto, "field": "saddr"}}, "right": str(interface.ip)}
    network = interface.network
    prefix = {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}
    daddrs = [prefix] + ([str(network.network_address)] if network.prefixlen == interface.max_prefixlen else [])
    statements = [s.get("match") for s in rule.expr]
    has_daddr = any(
        m and m.get("op") == "!=" and m.get("left") == {"payload": {"protocol": proto, "field": "daddr"}}
        and m.get("right") in daddrs
        for m in statements
    )
    return saddr in statements and has_daddr and any("masquerade" in s for s in rule.expr)


def problems(rules: list[NftRule], interfaces: Iterable, comment: str) -> list[str]:
    """What CHECK reports for the nftables form."""
    found = []
    if not any(r.chain == NFT_POSTROUTING_CHAIN and {"goto": {"target": NFT_MASQ_CHAIN}} in r.expr for r in rules):
        found.append(f"chain {NFT_POSTROUTING_CHAIN} of table {_TABLE} does not go to {NFT_MASQ_CHAIN}")
    mine = [r for r in rules if r.chain == NFT_MASQ_CHAIN and r.comment == comment]
    for interface in interfaces:
        if not any(_matches_address(r, interface) for r in mine):
            rule = f"{masq_rule_text(interface)} comment {_quote(comment)}"
            found.append(f"missing rule in {_TABLE} {NFT_MASQ_CHAIN}: {rule}")
    return found
