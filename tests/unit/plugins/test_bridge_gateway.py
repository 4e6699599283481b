"""bridge.add_gateway_addresses with fake links: where the gateway addresses go, and their undo.

With `vlan` the reference puts them on a `<bridge>.<vlan>` veth end whose peer is an untagged
port of that VLAN, and lists it as a fourth interface; this kernel has no bridge VLAN
filtering, so the netns tests can only prove the refusal, and this test proves the plan.
"""

from __future__ import annotations

import pytest

from cni_rkt.net import links
from cni_rkt.net.netlink import Link
from cni_rkt.plugins import bridge as plugin
from cni_rkt.plugins.bridge_config import load_config
from cni_rkt.plugins.bridge_result import plan_addresses
from cni_rkt.protocol.result import IPConfig, Result
from cni_rkt.protocol.undo import UndoStack

BRIDGE = Link(3, "br0", "bridge", "02:00:00:00:00:03", 1500, 0, 0, "UP", 0)
HOST_VETH = Link(4, "vethaaaa0000", "veth", "02:00:00:00:00:04", 1500, 3, 0, "UP", 0)
GATEWAY = Link(6, "br0.100", "veth", "02:00:00:00:00:06", 1500, 0, 5, "UP", 0)
GATEWAY_PEER = Link(5, "vethbbbb1111", "veth", "02:00:00:00:00:05", 1500, 3, 6, "UP", 0)
OTHER_BRIDGE_POD = Link(12, "vethdddd3333", "veth", "02:00:00:00:00:0c", 1500, 11, 0, "UP", 0)


class FakeHost:
    """The calls the step makes, recorded; the bridge's ports as `ports`."""

    def __init__(self, ports):
        self.calls: list[tuple] = []
        self.ports = ports


@pytest.fixture
def host(monkeypatch):
    fake = FakeHost([HOST_VETH])

    def ensure_port(ipr, bridge, name, vlan, preserve):
        fake.calls.append(("ensure_vlan_gateway_port", bridge.name, name, vlan, preserve))
        fake.ports.append(GATEWAY_PEER)
        return GATEWAY, GATEWAY_PEER

    def ensure_address(ipr, link, cidr, force):
        fake.calls.append(("ensure_address", link.name, cidr))
        return True, []

    monkeypatch.setattr(links, "ensure_vlan_gateway_port", ensure_port)
    monkeypatch.setattr(links, "ports_of", lambda ipr, index: list(fake.ports))
    monkeypatch.setattr(links, "pin_mac", lambda ipr, link: fake.calls.append(("pin_mac", link.name)))
    monkeypatch.setattr(links, "remove_link", lambda ipr, name: fake.calls.append(("remove_link", name)))
    monkeypatch.setattr(plugin.addrs, "ensure_address", ensure_address)
    monkeypatch.setattr(plugin.addrs, "remove_address", lambda ipr, link, cidr: fake.calls.append(("remove_address", link.name, cidr)))
    monkeypatch.setattr(plugin.sysctl, "ensure_sysctl", lambda name, value: None)
    monkeypatch.setattr(plugin.sysctl, "try_write_sysctl", lambda name, value: None)
    return fake


def step(conf_keys: dict, undo: UndoStack):
    config = {"name": "n", "type": "bridge", "bridge": "br0", "isGateway": True,
              "ipam": {"type": "host-local"}, **conf_keys}
    conf = load_config(config, "", "1.0.0")
    plan = plan_addresses(Result(ips=(IPConfig("10.22.0.5/16"),)), conf)
    return plugin.add_gateway_addresses(plugin.Sockets(host=object()), conf, BRIDGE, HOST_VETH, plan, undo)


def test_with_vlan_the_gateway_address_goes_on_the_vlan_port(host):
    with UndoStack() as undo:
        gateway = step({"vlan": 100, "preserveDefaultVlan": False}, undo)
        undo.commit()
    assert gateway == GATEWAY
    assert host.calls == [
        ("ensure_vlan_gateway_port", "br0", "br0.100", 100, False),
        ("ensure_address", "br0.100", "10.22.0.1/16"),
        ("pin_mac", "br0"),
    ]


def test_without_vlan_the_gateway_address_goes_on_the_bridge(host):
    with UndoStack() as undo:
        assert step({}, undo) is None
        undo.commit()
    assert host.calls == [("ensure_address", "br0", "10.22.0.1/16"), ("pin_mac", "br0")]


def test_a_failed_add_removes_the_port_it_made_when_no_other_pod_uses_the_bridge(host):
    with pytest.raises(RuntimeError), UndoStack() as undo:
        step({"vlan": 100}, undo)
        raise RuntimeError("a later step failed")
    assert host.calls[-2:] == [("remove_address", "br0.100", "10.22.0.1/16"), ("remove_link", "br0.100")]


def test_a_failed_add_keeps_the_port_while_another_pod_is_on_the_bridge(host):
    host.ports.append(Link(9, "vethcccc2222", "veth", "02:00:00:00:00:09", 1500, 3, 0, "UP", 0))
    with pytest.raises(RuntimeError), UndoStack() as undo:
        step({"vlan": 100}, undo)
        raise RuntimeError("a later step failed")
    assert not [c for c in host.calls if c[0].startswith("remove")]


@pytest.mark.parametrize("others, restored", [([], True), ([OTHER_BRIDGE_POD], False)], ids=["alone", "pod-on-another-bridge"])
def test_a_failed_add_turns_forwarding_back_off_unless_another_pod_is_in_the_netns(host, monkeypatch, others, restored):
    """The VLAN's gateway leg and its peer are the bridge's, not pods: alone with them, forwarding goes back off."""
    writes = []
    monkeypatch.setattr(plugin.sysctl, "ensure_sysctl", lambda name, value: "0")
    monkeypatch.setattr(plugin.sysctl, "write_sysctl", lambda name, value: writes.append((name, value)))
    monkeypatch.setattr(links, "pod_links", lambda ipr: [HOST_VETH, GATEWAY, GATEWAY_PEER, *others])
    with pytest.raises(RuntimeError), UndoStack() as undo:
        step({"vlan": 100}, undo)
        raise RuntimeError("a later step failed")
    assert writes == ([("net/ipv4/ip_forward", "0")] if restored else [])
