"""Pure helpers of net/links.py (no netlink)."""

import re

from cni_rkt.net.links import random_veth_name, vlan_ranges


def test_host_veth_names_are_veth_and_eight_hex_digits():
    names = {random_veth_name() for _ in range(20)}
    assert all(re.fullmatch(r"veth[0-9a-f]{8}", n) for n in names)
    assert len(names) > 1


def test_trunk_vlans_fold_into_runs_one_request_each():
    assert vlan_ranges([12, 10, 11, 5, 4094]) == [(5, 5), (10, 12), (4094, 4094)]
    assert vlan_ranges([]) == []
