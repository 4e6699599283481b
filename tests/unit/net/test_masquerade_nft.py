"""The nftables form planned as data, and nft's JSON listing read back."""

from __future__ import annotations

import ipaddress
import json

from cni_rkt.net import masquerade_nft as nft
from cni_rkt.net.masquerade_names import nft_comment, nft_instance_hash

NET = "mynet"


def listing(*rules: dict) -> str:
    """nft -j output shaped like nft 1.0.6 prints it for the reference's table."""
    items = [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "cni_plugins_masquerade"}}]
    items += [{"rule": {"family": "inet", "table": "cni_plugins_masquerade", **r}} for r in rules]
    return json.dumps({"nftables": items})


def masq_rule(handle: int, saddr: str, net: str, plen: int, comment: str, proto: str = "ip") -> dict:
    return {
        "chain": "masq_checks", "handle": handle, "comment": comment,
        "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "saddr"}}, "right": saddr}},
            {"match": {"op": "!=", "left": {"payload": {"protocol": proto, "field": "daddr"}},
                       "right": {"prefix": {"addr": net, "len": plen}}}},
            {"masquerade": None},
        ],
    }


GOTO = {"chain": "postrouting", "handle": 9, "expr": [{"goto": {"target": "masq_checks"}}]}


def test_setup_script_replaces_stale_rules_and_adds_one_rule_per_address():
    comment = nft_comment(NET, "eth0", "c1")
    script = nft.render_setup(
        [ipaddress.ip_interface("10.22.0.2/16"), ipaddress.ip_interface("2001:db8::2/64")], comment, [7]
    )
    lines = script.splitlines()
    assert lines[0].startswith("add table inet cni_plugins_masquerade { comment ")
    assert "add chain inet cni_plugins_masquerade postrouting { type nat hook postrouting priority 100 ; }" in lines
    assert "flush chain inet cni_plugins_masquerade postrouting" in lines
    assert lines[-3] == "delete rule inet cni_plugins_masquerade masq_checks handle 7"
    assert lines[-2] == (
        "add rule inet cni_plugins_masquerade masq_checks "
        f'ip saddr == 10.22.0.2 ip daddr != 10.22.0.0/16 masquerade comment "{comment}"'
    )
    assert lines[-1].startswith(
        "add rule inet cni_plugins_masquerade masq_checks ip6 saddr == 2001:db8::2 ip6 daddr != 2001:db8::/64"
    )


def test_rules_are_found_by_their_instance_hash():
    mine = nft_comment(NET, "eth0", "c1")
    other = nft_comment(NET, "eth0", "c2")
    rules = nft.parse_table(listing(masq_rule(4, "10.22.0.2", "10.22.0.0", 16, mine),
                                    masq_rule(5, "10.22.0.3", "10.22.0.0", 16, other), GOTO))
    assert [r.handle for r in nft.rules_with_prefix(rules, nft_instance_hash(NET, "eth0", "c1"))] == [4]


def test_gc_keeps_valid_attachments_and_other_networks():
    rules = nft.parse_table(listing(
        masq_rule(4, "10.22.0.2", "10.22.0.0", 16, nft_comment(NET, "eth0", "c1")),
        masq_rule(5, "10.22.0.3", "10.22.0.0", 16, nft_comment(NET, "eth0", "c2")),
        masq_rule(6, "10.9.0.3", "10.9.0.0", 16, nft_comment("othernet", "eth0", "c3")),
    ))
    assert nft.stale_handles(rules, NET, {("c1", "eth0")}) == [5]
    assert nft.stale_handles(rules, NET, {("c1", "eth1")}) == [4, 5]


def test_problems_is_empty_when_rules_are_there_and_names_what_is_missing():
    comment = nft_comment(NET, "eth0", "c1")
    address = ipaddress.ip_interface("10.22.0.2/16")
    rules = nft.parse_table(listing(masq_rule(4, "10.22.0.2", "10.22.0.0", 16, comment), GOTO))
    assert nft.problems(rules, [address], comment) == []
    assert nft.problems(rules[:1], [address], comment) == [
        "chain postrouting of table inet cni_plugins_masquerade does not go to masq_checks"
    ]
    wrong_subnet = nft.parse_table(listing(masq_rule(4, "10.22.0.2", "10.22.0.0", 24, comment), GOTO))
    (problem,) = nft.problems(wrong_subnet, [address], comment)
    assert "ip saddr == 10.22.0.2 ip daddr != 10.22.0.0/16 masquerade" in problem


def test_delete_script_names_each_handle():
    assert nft.render_delete([3, 8]) == (
        "delete rule inet cni_plugins_masquerade masq_checks handle 3\n"
        "delete rule inet cni_plugins_masquerade masq_checks handle 8\n"
    )
