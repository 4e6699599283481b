"""CHECK for the bridge: does the attachment described by prevResult still exist?

Beyond the reference (links, MACs, membership, addresses, routes) it also checks what
the reference skips: the port flags, the gateway address on the bridge and the ipMasq
rules. Messages of the checks the reference has are the reference's own.
"""

from __future__ import annotations

import ipaddress

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.net import addresses as addrs
from cni_rkt.net import links
from cni_rkt.plugins.bridge_config import BridgeConfig
from cni_rkt.protocol.invocation import Invocation
from cni_rkt.protocol.result import Interface, Result, ip_family


def _fail(msg: str) -> CNIError:
    return CNIError(ErrorCode.INTERNAL, msg)


def check_attachment(socks, conf: BridgeConfig, inv: Invocation, previous: Result) -> None:
    bridge_entry = next((i for i in previous.interfaces if i.name == conf.bridge), None)
    container_entry = next(
        (i for i in previous.interfaces if i.name == inv.ifname and i.sandbox == inv.netns), None
    )
    if bridge_entry is None:
        raise _fail(f"CNI created bridge {conf.bridge} in host namespace was not found")
    if container_entry is None:
        raise _fail(f"CNI created interface in container {inv.ifname} not found")
    bridge = check_bridge(socks.host, bridge_entry, conf)
    container = check_container(socks.pod, container_entry)
    others = [i for i in previous.interfaces if i is not bridge_entry and i is not container_entry]
    host_veth = check_host_veth(socks.host, others, bridge, container, conf)
    check_addresses(socks.pod, container, previous)
    check_routes(socks.pod, previous)
    check_gateway_addresses(socks.host, bridge, conf, previous)
    check_masquerade(conf, inv, previous)
    check_spoofcheck(conf, inv, host_veth, container)


def check_bridge(host, entry: Interface, conf: BridgeConfig) -> links.Link:
    bridge = links.find_link(host, entry.name)
    if bridge is None:
        raise _fail(f"Interface name {entry.name} not found")
    if bridge.kind != "bridge":
        raise _fail(f"Interface {entry.name} does not have link type of bridge")
    if entry.mac and entry.mac != bridge.mac:
        raise _fail(f"Bridge interface {entry.name} Mac doesn't match: {entry.mac}")
    if bridge.promisc != conf.promisc_mode:
        raise _fail(
            f"Bridge interface {entry.name} configured Promisc Mode {conf.promisc_mode} doesn't match current state: {bridge.promisc}"
        )
    return bridge


def check_container(pod, entry: Interface) -> links.Link:
    container = links.find_link(pod, entry.name)
    if container is None:
        raise _fail(f"Interface name {entry.name} not found")
    if container.kind != "veth":
        raise _fail(f"Error: Container interface {entry.name} not of type veth")
    if entry.mac and entry.mac != container.mac:
        raise _fail(f"Interface {entry.name} Mac {entry.mac} doesn't match container Mac: {container.mac}")
    return container


def check_host_veth(
    host, entries: list[Interface], bridge: links.Link, container: links.Link, conf: BridgeConfig
) -> links.Link:
    """Some listed host interface is the container's peer, on the bridge, with the right MAC and flags."""
    for entry in entries:
        if entry.sandbox:
            continue
        veth = links.find_link(host, entry.name)
        if veth is None or veth.kind != "veth":
            continue
        if veth.index != container.peer or veth.peer != container.index or veth.master != bridge.index:
            continue
        if entry.mac and entry.mac != veth.mac:
            raise _fail(f"Interface {entry.name} Mac doesn't match: {entry.mac} not found")
        hairpin, isolated = links.port_flags(host, veth.index)
        if hairpin != conf.hairpin_mode:
            raise _fail(f"Interface {entry.name} hairpin mode is {hairpin}, the config says {conf.hairpin_mode}")
        if isolated != conf.port_isolation:
            raise _fail(f"Interface {entry.name} port isolation is {isolated}, the config says {conf.port_isolation}")
        return veth
    raise _fail(f"CNI veth created for bridge {conf.bridge} was not found")


def check_addresses(pod, container: links.Link, previous: Result) -> None:
    present = {ipaddress.ip_interface(a) for a in addrs.addresses(pod, container.index)}
    for ip in previous.ips:
        if ipaddress.ip_interface(ip.address) not in present:
            raise _fail(f"Failed to match addr {ip.address} on interface {container.name}")


def check_routes(pod, previous: Result) -> None:
    tables = {family: addrs.routes(pod, family) for family in {ip_family(r.dst) for r in previous.routes}}
    for route in previous.routes:
        dst = ipaddress.ip_network(route.dst, strict=False)
        found = any(
            ipaddress.ip_network(have_dst, strict=False) == dst and (not route.gw or have_gw == route.gw)
            for have_dst, have_gw, _oif in tables[ip_family(route.dst)]
        )
        if not found:
            via = f" via {route.gw}" if route.gw else ""
            raise _fail(f"Failed to match route {route.dst}{via} in the container")


def check_gateway_addresses(host, bridge: links.Link, conf: BridgeConfig, previous: Result) -> None:
    """On the bridge, or on the VLAN's `<bridge>.<vlan>` gateway port."""
    if not conf.is_gateway:
        return
    target = bridge
    if conf.vlan_gateway_port:
        target = links.find_link(host, conf.vlan_gateway_port)
        if target is None:
            raise _fail(f"vlan gateway interface {conf.vlan_gateway_port} not found")
    present = {ipaddress.ip_interface(a) for a in addrs.addresses(host, target.index)}
    for ip in previous.ips:
        if not ip.gateway:
            continue
        wanted = ipaddress.ip_interface(f"{ip.gateway}/{ipaddress.ip_interface(ip.address).network.prefixlen}")
        if wanted not in present:
            raise _fail(f"Failed to match gateway addr {wanted} on {target.name}")


def check_masquerade(conf: BridgeConfig, inv: Invocation, previous: Result) -> None:
    if not (conf.ip_masq and conf.is_layer3):
        return
    from cni_rkt.net import masquerade

    cidrs = [ip.address for ip in previous.ips]
    problems = masquerade.masquerade_problems(conf.network, inv.container_id, inv.ifname, cidrs, conf.ip_masq_backend)
    if problems:
        raise _fail(f"ipMasq rules of {conf.network}/{inv.container_id} are not in place: {'; '.join(problems)}")


def check_spoofcheck(conf: BridgeConfig, inv: Invocation, host_veth: links.Link, container: links.Link) -> None:
    if not conf.mac_spoof_check:
        return
    from cni_rkt.net import spoofcheck

    problems = spoofcheck.spoofcheck_problems(host_veth.name, container.mac, inv.container_id, inv.ifname)
    if problems:
        raise _fail(f"macspoofchk rules of {inv.container_id}/{inv.ifname} are not in place: {'; '.join(problems)}")
