"""rtnl_answers reads what pyroute2 writes: messages encoded with pyroute2's own classes
(as the kernel lays them out) come back with the same fields and attribute values."""

import socket
import struct

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from cni_rkt.net import rtnl_answers as answers


def encoded(message_class, fields: dict, attrs: list) -> bytes:
    message = message_class()
    for key, value in fields.items():
        message[key] = value
    message["attrs"] = attrs
    message.encode()
    return bytes(message.data)


def test_a_link_answer():
    port = [("IFLA_BRPORT_MODE", 1), ("IFLA_BRPORT_ISOLATED", 0)]
    info = [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_SLAVE_KIND", "bridge"), ("IFLA_INFO_SLAVE_DATA", {"attrs": port})]
    data = encoded(ifinfmsg, {"index": 7, "flags": 0x1003}, [
        ("IFLA_IFNAME", "veth0a1b2c3d"), ("IFLA_ADDRESS", "0a:58:0a:16:00:02"), ("IFLA_MTU", 1460),
        ("IFLA_LINK", 2), ("IFLA_MASTER", 3), ("IFLA_OPERSTATE", "UP"), ("IFLA_LINKINFO", {"attrs": info}),
    ])
    link = answers.Answer(answers.LINK, data)
    assert (link["index"], link["flags"]) == (7, 0x1003)
    assert link.get_attr("IFLA_IFNAME") == "veth0a1b2c3d"
    assert link.get_attr("IFLA_ADDRESS") == "0a:58:0a:16:00:02"
    assert (link.get_attr("IFLA_MTU"), link.get_attr("IFLA_LINK"), link.get_attr("IFLA_MASTER")) == (1460, 2, 3)
    assert link.get_attr("IFLA_OPERSTATE") == "UP"
    linkinfo = link.get_attr("IFLA_LINKINFO")
    assert (linkinfo.get_attr("IFLA_INFO_KIND"), linkinfo.get_attr("IFLA_INFO_SLAVE_KIND")) == ("veth", "bridge")
    bridge_port = linkinfo.get_attr("IFLA_INFO_SLAVE_DATA")
    assert (bridge_port.get_attr("IFLA_BRPORT_MODE"), bridge_port.get_attr("IFLA_BRPORT_ISOLATED")) == (1, 0)


def test_absent_attributes_give_the_default():
    link = answers.Answer(answers.LINK, encoded(ifinfmsg, {"index": 1}, [("IFLA_IFNAME", "lo")]))
    assert link.get_attr("IFLA_MASTER") is None
    assert link.get_attr("IFLA_MTU", 0) == 0
    assert link.get_attr("IFLA_LINKINFO") is None


@pytest.mark.parametrize("family, address, prefix", [(socket.AF_INET, "10.22.0.1", 16), (socket.AF_INET6, "fd00::1", 64)])
def test_an_address_answer(family, address, prefix):
    data = encoded(ifaddrmsg, {"family": family, "prefixlen": prefix, "scope": 0, "index": 4},
                   [("IFA_ADDRESS", address), ("IFA_FLAGS", 0x40)])
    answer = answers.Answer(answers.ADDRESS, data)
    assert (answer["family"], answer["prefixlen"], answer["scope"], answer["index"]) == (family, prefix, 0, 4)
    assert answer.get_attr("IFA_ADDRESS") == address
    assert answer.get_attr("IFA_FLAGS") == 0x40


def test_a_route_answer():
    data = encoded(rtmsg, {"family": socket.AF_INET, "dst_len": 24, "table": 254, "proto": 3, "type": 1},
                   [("RTA_DST", "10.9.0.0"), ("RTA_GATEWAY", "10.22.0.1"), ("RTA_OIF", 5), ("RTA_PRIORITY", 7)])
    route = answers.Answer(answers.ROUTE, data)
    assert (route["dst_len"], route["table"], route["proto"], route["type"]) == (24, 254, 3, 1)
    assert (route.get_attr("RTA_DST"), route.get_attr("RTA_GATEWAY"), route.get_attr("RTA_OIF")) == ("10.9.0.0", "10.22.0.1", 5)
    assert route.get_attr("RTA_PRIORITY") == 7


def test_the_first_of_a_repeated_attribute_wins_and_a_malformed_one_ends_the_list():
    data = encoded(ifinfmsg, {"index": 9}, [("IFLA_IFNAME", "first"), ("IFLA_IFNAME", "second")])
    assert answers.Answer(answers.LINK, data).get_attr("IFLA_IFNAME") == "first"
    broken = data + struct.pack("=HH", 2, 4)  # an attribute shorter than its own header
    assert answers.Answer(answers.LINK, broken).get_attr("IFLA_MTU") is None
