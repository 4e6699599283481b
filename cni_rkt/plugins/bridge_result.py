"""Pure arithmetic between IPAM's answer and the bridge's result (no netlink here).

`plan_addresses` does what the reference's calcGateways does: every IP refers to the
container interface (index 2), a missing gateway becomes network+1 when the bridge is
the gateway, and isDefaultGateway adds a default route per family unless IPAM gave one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.net.addresses import RouteSpec
from cni_rkt.plugins.bridge_config import BridgeConfig
from cni_rkt.protocol import spec
from cni_rkt.protocol.delegate import parse_add_answer
from cni_rkt.protocol.result import DNS, Interface, IPConfig, Result, Route, ip_family

CONTAINER_INTERFACE_INDEX = 2  # after the bridge (0) and the host veth (1)
_DEFAULT_DST = {4: "0.0.0.0/0", 6: "::/0"}


@dataclass(frozen=True, slots=True)
class AddressPlan:
    ips: tuple[IPConfig, ...]
    routes: tuple[Route, ...]
    bridge_addresses: tuple[str, ...]  # gateway/prefix to put on the bridge (isGateway)


def gateway_for(address: str) -> str:
    """The first host of the address's network: the reference's default gateway."""
    network = ipaddress.ip_interface(address).network
    return str(network.network_address + 1)


def parse_ipam_answer(stdout: bytes, ipam_type: str, cni_version: str) -> Result:
    """IPAM's ADD output as a result with at least one usable address, or a CNIError."""
    result = parse_add_answer(stdout, ipam_type, cni_version)
    if not result.ips:
        raise CNIError(ErrorCode.INTERNAL, "IPAM plugin returned missing IP config")
    check_ipam_routes(result, ipam_type)
    return result


def check_ipam_routes(ipam: Result, ipam_type: str) -> None:
    """Every route IPAM returned must parse before one touches a link (parse_result checks
    the addresses and gateways, not the routes). A dst with host bits set (10.1.2.3/8) is
    refused here, as the kernel refuses it (Go fails at the route, after the veth is made)."""
    for route in ipam.routes:
        fields = [("route dst", route.dst, ipaddress.ip_network)]
        if route.gw:
            fields.append(("route gw", route.gw, ipaddress.ip_address))
        for what, value, parse in fields:
            try:
                parse(value)
            except (TypeError, ValueError) as exc:
                raise CNIError(
                    ErrorCode.DECODING_FAILURE, f"IPAM plugin {ipam_type} returned an invalid {what}: {value!r}", str(exc)
                ) from None


def plan_addresses(ipam: Result, conf: BridgeConfig) -> AddressPlan:
    ips: list[IPConfig] = []
    routes = list(ipam.routes)
    bridge_addresses: list[str] = []
    has_default = {
        family: any(r.gw and r.dst == _DEFAULT_DST[family] for r in routes) for family in (4, 6)
    }
    for ip in ipam.ips:
        gateway = ip.gateway or (gateway_for(ip.address) if conf.is_gateway else "")
        ips.append(IPConfig(ip.address, gateway, CONTAINER_INTERFACE_INDEX))
        family = ip.family
        if conf.is_default_gateway and not has_default[family]:
            routes.append(Route(_DEFAULT_DST[family], gateway))
            has_default[family] = True
        if conf.is_gateway and gateway:
            if ip_family(gateway) != family:  # host-local takes one, as Go's does; the bridge cannot be it
                raise CNIError(
                    ErrorCode.INVALID_NETWORK_CONFIG,
                    f"isGateway: IPAM gateway {gateway} is not of the family of {ip.address}",
                    "ipam gateway",
                )
            prefix = ipaddress.ip_interface(ip.address).network.prefixlen
            cidr = f"{gateway}/{prefix}"
            if cidr not in bridge_addresses:
                bridge_addresses.append(cidr)
    return AddressPlan(tuple(ips), tuple(routes), tuple(bridge_addresses))


def pod_routes(plan: AddressPlan) -> list[RouteSpec]:
    """Routes to add in the pod: a route without gw goes via its family's gateway, if any."""
    family_gateway = {}
    for ip in plan.ips:
        if ip.gateway:
            # The first one of each family, as the reference; keyed by the gateway's own family, as
            # Go's: host-local may pair an address with a gateway of the other family.
            family_gateway.setdefault(ip_family(ip.gateway), ip.gateway)
    out = []
    for route in plan.routes:
        gw = route.gw or family_gateway.get(ip_family(route.dst), "")
        out.append(RouteSpec(route.dst, gw, route.priority, route.table, route.scope, route.mtu, route.advmss))
    return out


def build_result(
    interfaces: list[Interface], plan: AddressPlan | None, ipam_dns: DNS, conf: BridgeConfig
) -> Result:
    dns = conf.dns if conf.dns is not None else ipam_dns
    if plan is None:
        return Result(spec.CURRENT_VERSION, tuple(interfaces), dns=dns)
    return Result(spec.CURRENT_VERSION, tuple(interfaces), plan.ips, plan.routes, dns)
