"""The bridge plugin: a veth from the pod's netns to a Linux bridge, addresses by IPAM.

Each verb reads top-down as named steps. ADD registers an undo right after each side
effect, so a failed ADD leaves the host as it found it (the reference leaks the veth);
DEL converges to absent, whatever is already gone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import sys
from dataclasses import dataclass

from cni_rkt.background import finish_after_reply, finishing_after_reply_allowed
from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.net import addresses as addrs
from cni_rkt.net import links, netns, sysctl
from cni_rkt.plugins.bridge_config import BridgeConfig, load_config, load_delete_config
from cni_rkt.plugins.bridge_result import AddressPlan, build_result, parse_ipam_answer, plan_addresses, pod_routes
from cni_rkt.protocol.attachments import valid_attachments
from cni_rkt.protocol.delegate import call_plugin, delegate_other
from cni_rkt.protocol.invocation import Invocation
from cni_rkt.protocol.result import DNS, Interface, Result, prev_result
from cni_rkt.protocol.undo import UndoStack


def load(inv: Invocation) -> BridgeConfig:
    return load_config(inv.decoded, inv.cni_args, inv.cni_version)


@dataclass
class Sockets:
    """One netlink socket in the host netns and, when there is a pod, one in the pod's."""

    host: object
    pod: object | None = None
    pod_ns: netns.NetNS | None = None


@contextlib.contextmanager
def sockets(pod_ns: netns.NetNS | None):
    host = links.open_netlink()
    pod = None
    try:
        if pod_ns is not None:
            with netns.entered(pod_ns):
                pod = links.open_netlink()
        yield Sockets(host, pod, pod_ns)
    finally:
        host.close()
        if pod is not None:
            pod.close()
        if pod_ns is not None:
            pod_ns.close()


# --- ADD ---------------------------------------------------------------------------


def add(inv: Invocation) -> Result:
    conf = load(inv)
    gateway_port = None
    with sockets(netns.open_netns(inv.netns)) as socks, UndoStack() as undo:
        bridge = ensure_bridge(socks, conf, undo)
        host_veth, container = create_veth(socks, conf, inv.ifname, undo)
        attach(socks, conf, host_veth, bridge)
        setup_spoofcheck(inv, conf, host_veth, container, undo)
        plan, ipam_dns = None, DNS()
        if conf.is_layer3:
            ipam_result = ipam_add(inv, conf, undo)
            plan, ipam_dns = plan_addresses(ipam_result, conf), ipam_result.dns
            with setting_up_masquerade(inv, conf, plan, undo):
                configure_pod(socks, conf, container, plan)
                gateway_port = add_gateway_addresses(socks, conf, bridge, host_veth, plan, undo)
        elif not conf.disable_container_interface:
            links.set_up(socks.pod, container)
        if not conf.disable_container_interface:
            host_veth = links.wait_oper_up(socks.host, host_veth)
        bridge = links.get_link(socks.host, bridge.index)  # its MAC may follow a new port
        undo.commit()
    interfaces = [
        Interface(bridge.name, bridge.mac),
        Interface(host_veth.name, host_veth.mac),
        Interface(container.name, container.mac, sandbox=inv.netns),
    ]
    if gateway_port is not None:  # the reference lists the VLAN's gateway port last
        interfaces.append(Interface(gateway_port.name, gateway_port.mac))
    return build_result(interfaces, plan, ipam_dns, conf)


def ensure_bridge(socks: Sockets, conf: BridgeConfig, undo: UndoStack) -> links.Link:
    bridge, before = links.ensure_bridge(socks.host, conf.bridge, conf.mtu, conf.uses_vlans, conf.promisc_mode)
    if before is None:
        undo.push(f"remove bridge {conf.bridge}", lambda: links.remove_bridge_if_unused(socks.host, conf.bridge))
    else:  # runs after our veth is gone, so a port still there is another pod's
        undo.push(f"restore flags of {conf.bridge}", lambda: links.restore_bridge_flags(socks.host, before))
    sysctl.try_write_sysctl(f"net/ipv6/conf/{conf.bridge}/accept_ra", "0")  # we own its routes
    return bridge


def create_veth(socks: Sockets, conf: BridgeConfig, ifname: str, undo: UndoStack) -> tuple[links.Link, links.Link]:
    host_veth = links.create_veth(socks.host, socks.pod, socks.pod_ns.fd, ifname, conf.mtu, conf.mac)
    # deleting one end deletes both, wherever the other end is
    undo.push(f"remove veth {host_veth.name}", lambda: links.remove_link(socks.host, host_veth.name))
    sysctl.try_write_sysctl(f"net/ipv6/conf/{host_veth.name}/accept_ra", "0")
    container = links.find_link(socks.pod, ifname)
    if container is None:
        raise CNIError(ErrorCode.INTERNAL, f"failed to lookup {ifname!r} in the pod after creating it")
    return host_veth, container


def attach(socks: Sockets, conf: BridgeConfig, host_veth: links.Link, bridge: links.Link) -> None:
    links.attach_port(
        socks.host,
        host_veth,
        bridge,
        hairpin=conf.hairpin_mode,
        isolated=conf.port_isolation,
        vlan=conf.vlan,
        trunk=conf.vlan_trunk,
        preserve_default_vlan=conf.preserve_default_vlan,
    )


def setup_spoofcheck(inv: Invocation, conf: BridgeConfig, host_veth: links.Link, container: links.Link, undo: UndoStack) -> None:
    if not conf.mac_spoof_check:
        return
    from cni_rkt.net import spoofcheck

    undo.push("remove macspoofchk rules", lambda: spoofcheck.remove_spoofcheck(inv.container_id, inv.ifname))
    spoofcheck.setup_spoofcheck(host_veth.name, container.mac, inv.container_id, inv.ifname)


def ipam_add(inv: Invocation, conf: BridgeConfig, undo: UndoStack) -> Result:
    answer = call_plugin(conf.ipam_type, "ADD", inv.stdin, inv.environ, inv.cni_path)
    # IPAM succeeded, so it holds a reservation now, whatever its answer turns out to be
    undo.push(f"release IPAM ({conf.ipam_type})", lambda: ipam_call(inv, conf, "DEL"))
    return parse_ipam_answer(answer, conf.ipam_type, inv.cni_version)


def ipam_call(inv: Invocation, conf: BridgeConfig, command: str) -> None:
    delegate_other(conf.ipam_type, command, inv.stdin, inv.environ, inv.cni_path)


def configure_pod(socks: Sockets, conf: BridgeConfig, container: links.Link, plan: AddressPlan) -> None:
    """Sysctls, addresses, link up and routes of the container end, in that order."""
    has_ipv6 = any(ip.family == 6 for ip in plan.ips)
    with netns.entered(socks.pod_ns):
        configure_pod_sysctls(container.name, conf.enable_dad, has_ipv6)
    for ip in plan.ips:
        addrs.add_address(socks.pod, container, ip.address)
    links.set_up(socks.pod, container)
    if has_ipv6 and conf.enable_dad:
        addrs.wait_dad_settled(socks.pod, container)
    for route in pod_routes(plan):
        addrs.add_route(socks.pod, container, route)


def configure_pod_sysctls(ifname: str, enable_dad: bool, has_ipv6: bool) -> None:
    """Called inside the pod's netns; best effort, as the reference (IPv6 may be off)."""
    if enable_dad:
        sysctl.try_write_sysctl(f"net/ipv6/conf/{ifname}/enhanced_dad", "1")
        sysctl.try_write_sysctl(f"net/ipv6/conf/{ifname}/accept_dad", "1")
    else:
        sysctl.try_write_sysctl(f"net/ipv6/conf/{ifname}/accept_dad", "0")
    sysctl.try_write_sysctl(f"net/ipv4/conf/{ifname}/arp_notify", "1")
    if has_ipv6:
        for name in ("lo", ifname):
            if sysctl.read_sysctl(f"net/ipv6/conf/{name}/disable_ipv6") not in (None, "0"):
                sysctl.write_sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "0")
        sysctl.try_write_sysctl(f"net/ipv6/conf/{ifname}/keep_addr_on_down", "1")


def add_gateway_addresses(
    socks: Sockets, conf: BridgeConfig, bridge: links.Link, host_veth: links.Link, plan: AddressPlan, undo: UndoStack
) -> links.Link | None:
    """isGateway: the gateway addresses on the bridge (or on the VLAN's gateway port, which
    it returns), and forwarding on for their families."""
    if not conf.is_gateway or not plan.bridge_addresses:
        return None
    target, ours = bridge, {host_veth.index}
    if conf.vlan_gateway_port:
        target = ensure_vlan_gateway_port(socks, conf, bridge, host_veth, undo)
        ours.update((target.index, target.peer))  # the VLAN's leg is the bridge's, not a pod's

    def only_ours_left() -> bool:
        return all(p.index in ours for p in links.ports_of(socks.host, bridge.index))

    def no_other_pod_in_netns() -> bool:  # forwarding is the netns's: any bridge's pod needs it
        return all(link.index in ours for link in links.pod_links(socks.host))

    for cidr in plan.bridge_addresses:
        added, replaced = addrs.ensure_address(socks.host, target, cidr, conf.force_address)
        for old in replaced:
            undo.push(f"restore {old} on {target.name}", lambda old=old: addrs.add_address(socks.host, target, old))
        if added:
            undo.push(
                f"remove {cidr} from {target.name}",
                lambda cidr=cidr: only_ours_left() and addrs.remove_address(socks.host, target, cidr),
            )
    links.pin_mac(socks.host, bridge)  # its MAC from before the first port, as the reference
    for family in sorted({ipaddress.ip_interface(c).version for c in plan.bridge_addresses}):
        name = sysctl.forwarding_sysctl(family)
        before = sysctl.ensure_sysctl(name, "1")
        if before is not None:  # not under a pod attached meanwhile, to this bridge or another
            undo.push(
                f"restore {name}",
                lambda name=name, before=before: no_other_pod_in_netns() and sysctl.write_sysctl(name, before),
            )
    return target if target is not bridge else None


def ensure_vlan_gateway_port(
    socks: Sockets, conf: BridgeConfig, bridge: links.Link, host_veth: links.Link, undo: UndoStack
) -> links.Link:
    """`<bridge>.<vlan>`, made by the first gateway ADD on that VLAN; it stays after DEL, as the bridge."""
    name = conf.vlan_gateway_port
    gateway, port = links.ensure_vlan_gateway_port(socks.host, bridge, name, conf.vlan, conf.preserve_default_vlan)
    if port is not None:

        def remove_if_unused() -> None:
            if all(p.index in (host_veth.index, port.index) for p in links.ports_of(socks.host, bridge.index)):
                links.remove_link(socks.host, name)

        undo.push(f"remove vlan gateway port {name}", remove_if_unused)
    sysctl.try_write_sysctl(f"net/ipv6/conf/{name}/accept_ra", "0")  # we own its routes, as the bridge's
    return gateway


@contextlib.contextmanager
def setting_up_masquerade(inv: Invocation, conf: BridgeConfig, plan: AddressPlan, undo: UndoStack):
    """ipMasq's rules, made in the background while the block configures the pod (the rules
    need only the addresses; the firewall program mostly runs outside Python). Its undo is
    registered first, and the rules are waited for before the block's error, if any,
    reaches the undo stack."""
    if not conf.ip_masq:
        yield
        return
    from cni_rkt.background import BackgroundCall
    from cni_rkt.net import masquerade

    cidrs = [ip.address for ip in plan.ips]
    undo.push(
        "remove masquerade rules",
        lambda: masquerade.remove_masquerade(conf.network, inv.container_id, inv.ifname, cidrs),
    )
    pending = BackgroundCall(
        "masquerade",
        lambda: masquerade.setup_masquerade(conf.network, inv.container_id, inv.ifname, cidrs, conf.ip_masq_backend),
    )
    try:
        yield
    except BaseException:
        try:
            pending.wait()
        except Exception as exc:  # noqa: BLE001 - the block's error is the one to report
            sys.stderr.write(f"ipMasq setup failed too: {exc}\n")
        raise
    pending.wait()


# --- DEL ---------------------------------------------------------------------------


def delete(inv: Invocation) -> None:
    """Link, IPAM, then masquerade rules; each step tolerates what is already gone. The
    link's deletion waits in the kernel, so IPAM and the rules are released meanwhile."""
    conf = load_delete_config(inv.decoded, inv.cni_version)
    with removing_container_link(inv) as addresses:
        if conf.is_layer3 and conf.ip_masq and not addresses:
            addresses = addresses_without_link(inv, conf)  # read before IPAM forgets them
        if conf.is_layer3:
            ipam_call(inv, conf, "DEL")
        if conf.mac_spoof_check:
            from cni_rkt.net import spoofcheck

            spoofcheck.remove_spoofcheck(inv.container_id, inv.ifname)
        if conf.is_layer3:  # with ipMasq off now too: an earlier config may have made rules
            from cni_rkt.net import masquerade

            masquerade.remove_masquerade(conf.network, inv.container_id, inv.ifname, addresses or [], conf.ip_masq)


@contextlib.contextmanager
def removing_container_link(inv: Invocation):
    """Delete CNI_IFNAME in the pod (its veth peer goes too) in the background; yield the
    addresses it had (None: no netns or no such link). On the way out, wait until the link
    is gone; in a worker's child, the rest of the kernel's work (10-25 ms of grace periods
    that nothing can observe) is waited for after the reply."""
    pod_ns = netns.open_netns_if_present(inv.netns)
    if pod_ns is None:
        yield None
        return
    cleanup = contextlib.ExitStack()  # closed now, or after the reply
    try:
        cleanup.callback(pod_ns.close)
        with netns.entered(pod_ns):
            pod = cleanup.enter_context(links.open_netlink())
        removal = links.LinkRemoval(pod, inv.ifname)
        host_watch = None  # the host end is our netns's: its removal is announced here
        if removal.link is not None and finishing_after_reply_allowed():
            from cni_rkt.net.rtnl import RemovalWatch

            host_watch = cleanup.enter_context(contextlib.closing(RemovalWatch()))
        removal.start(host_watch)
        cleanup.callback(removal.wait)
        yield removal.addresses
        if removal.wait_until_gone():
            finish_after_reply(cleanup.pop_all().close)
    finally:
        cleanup.close()


def addresses_without_link(inv: Invocation, conf: BridgeConfig) -> list[str]:
    """The attachment's addresses from prevResult, else from host-local's reservations."""
    try:
        previous = prev_result(inv.config, inv.cni_version)
    except CNIError as exc:  # DEL converges; Go does not read prevResult here at all
        sys.stderr.write(f"bridge DEL: ignoring a prevResult it cannot read: {exc}\n")
        previous = None
    if previous is not None and previous.ips:
        return [ip.address for ip in previous.ips]
    if conf.ipam_type != "host-local":
        return []
    from cni_rkt.plugins.host_local import reserved_ips

    return [a if "/" in a else f"{a}/{ipaddress.ip_address(a).max_prefixlen}" for a in reserved_ips(inv.decoded, inv.container_id, inv.ifname)]


# --- CHECK, STATUS, GC -------------------------------------------------------------


def check(inv: Invocation) -> None:
    from cni_rkt.plugins.bridge_check import check_attachment

    conf = load(inv)
    if conf.is_layer3:
        ipam_call(inv, conf, "CHECK")
    previous = prev_result(inv.config, inv.cni_version)
    if previous is None:
        raise CNIError(ErrorCode.INVALID_NETWORK_CONFIG, "Required prevResult missing", "prevResult")
    with sockets(netns.open_netns(inv.netns)) as socks:
        check_attachment(socks, conf, inv, previous)


def status(inv: Invocation) -> None:
    conf = load(inv)
    if conf.is_layer3:
        ipam_call(inv, conf, "STATUS")


def gc(inv: Invocation) -> None:
    """IPAM's GC, then the masquerade rules of attachments that are not valid any more."""
    conf = load(inv)
    valid = valid_attachments(inv.config)  # no list: refuse before anything is removed
    errors: list[str] = []
    if conf.is_layer3:
        try:
            ipam_call(inv, conf, "GC")
        except CNIError as exc:
            errors.append(str(exc))
    # also when ipMasq is off now: rules made while it was on are still this network's
    from cni_rkt.net import masquerade

    errors += masquerade.gc_masquerade(conf.network, valid)
    if errors:
        raise CNIError(ErrorCode.INTERNAL, "bridge GC failed", "; ".join(errors))
