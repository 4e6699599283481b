"""Addresses and routes of a link, through an open netlink socket (see netlink.py)."""

from __future__ import annotations

import errno
import ipaddress
import socket
import time
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.net.netlink import Link, netlink_errors, strerror

IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08
RT_SCOPE_UNIVERSE = 0
RTPROT_BOOT = 3  # what the kernel records for a route added without a protocol, as Go's are
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
DAD_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A route to add in the pod: dst and optional gw, plus the 1.1.0 attributes."""

    dst: str
    gw: str = ""
    priority: int = 0
    table: int | None = None
    scope: int | None = None
    mtu: int = 0
    advmss: int = 0


def addresses(ipr, index: int, family: int | None = None) -> list[str]:
    """Global addresses of a link as "a.b.c.d/n" strings."""
    with netlink_errors(f"could not list addresses of link {index}"):
        msgs = ipr.dump_addresses(index)
    out = []
    for m in msgs:
        if m["scope"] != RT_SCOPE_UNIVERSE:
            continue
        addr = m.get_attr("IFA_ADDRESS")
        if family is not None and ipaddress.ip_address(addr).version != family:
            continue
        out.append(f"{addr}/{m['prefixlen']}")
    return out


def routes(ipr, family: int) -> list[tuple[str, str, int]]:
    """(dst, gw, oif) of the main-table routes of one family."""
    with netlink_errors("could not list routes"):
        msgs = ipr.dump_routes(socket.AF_INET if family == 4 else socket.AF_INET6)
    out = []
    zero = "0.0.0.0" if family == 4 else "::"
    for m in msgs:
        dst = m.get_attr("RTA_DST") or zero
        out.append((f"{dst}/{m['dst_len']}", m.get_attr("RTA_GATEWAY") or "", m.get_attr("RTA_OIF") or 0))
    return out




def change_address(ipr, add: bool, link: Link, iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    ipr.change_address(add, link.index, family, str(iface.ip), iface.network.prefixlen)


def add_address(ipr, link: Link, cidr: str) -> None:
    with netlink_errors(f"failed to add IP addr {cidr} to {link.name!r}"):
        change_address(ipr, True, link, ipaddress.ip_interface(cidr))


def remove_address(ipr, link: Link, cidr: str) -> bool:
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        change_address(ipr, False, link, ipaddress.ip_interface(cidr))
    except NetlinkError as exc:
        if exc.code in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT):
            return False
        raise CNIError(ErrorCode.INTERNAL, f"could not remove IP address {cidr} from {link.name!r}: {strerror(exc)}") from exc
    return True


def ensure_address(ipr, link: Link, cidr: str, force: bool) -> tuple[bool, list[str]]:
    """Put the gateway `cidr` on the bridge; return (added by us, addresses we replaced).

    Another IPv4 address, or an overlapping IPv6 one, is an error unless `force`, in
    which case it is removed first (the reference's forceAddress).
    """
    wanted = ipaddress.ip_interface(cidr)
    replaced: list[str] = []
    for existing in addresses(ipr, link.index, wanted.version):
        other = ipaddress.ip_interface(existing)
        if other == wanted:
            return False, replaced
        if wanted.version == 4 or wanted.ip in other.network or other.ip in wanted.network:
            if not force:
                raise CNIError(
                    ErrorCode.INTERNAL, f'failed to set bridge addr: "{link.name}" already has an IP address different from {cidr}'
                )
            remove_address(ipr, link, existing)
            replaced.append(existing)
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        change_address(ipr, True, link, wanted)
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:  # a concurrent ADD on the same bridge won the race
            return False, replaced
        raise CNIError(ErrorCode.INTERNAL, f'failed to set bridge addr: could not add IP address to "{link.name}": {strerror(exc)}') from exc
    return True, replaced


def add_route(ipr, link: Link, route: RouteSpec) -> None:
    """The route as pyroute2's `route("add")` built it: main table, universe scope, unicast."""
    dst = ipaddress.ip_network(route.dst)
    table = route.table if route.table is not None else RT_TABLE_MAIN
    fields = {
        "family": socket.AF_INET if dst.version == 4 else socket.AF_INET6,
        "dst_len": dst.prefixlen,
        "table": table if 0 < table < 255 else RT_TABLE_MAIN,  # RTA_TABLE below carries any other
        "proto": RTPROT_BOOT,
        "scope": route.scope if route.scope is not None else RT_SCOPE_UNIVERSE,
        "type": RTN_UNICAST,
    }
    attrs: list = [("RTA_DST", str(dst.network_address))] if dst.prefixlen else []
    attrs.append(("RTA_OIF", link.index))
    if route.gw:
        attrs.append(("RTA_GATEWAY", route.gw))
    if route.priority:
        attrs.append(("RTA_PRIORITY", route.priority))
    if route.table is not None:
        attrs.append(("RTA_TABLE", route.table))
    metrics = [(k, v) for k, v in (("RTAX_MTU", route.mtu), ("RTAX_ADVMSS", route.advmss)) if v]
    if metrics:
        attrs.append(("RTA_METRICS", {"attrs": metrics}))
    via = f" via {route.gw}" if route.gw else ""
    with netlink_errors(f"failed to add route '{route.dst}{via} dev {link.name}'"):
        ipr.new_route(fields, attrs)


def wait_dad_settled(ipr, link: Link, timeout: float = DAD_TIMEOUT) -> None:
    """Wait (bounded) until no IPv6 address of `link` is tentative; DAD failure is an error."""
    deadline = time.monotonic() + timeout
    while True:
        with netlink_errors(f"could not list addresses of {link.name}"):
            msgs = ipr.dump_addresses(link.index, socket.AF_INET6)
        flags = [m.get_attr("IFA_FLAGS") or m["flags"] for m in msgs]
        if any(f & IFA_F_DADFAILED for f in flags):
            raise CNIError(ErrorCode.INTERNAL, f"duplicate address detection failed on {link.name}")
        if not any(f & IFA_F_TENTATIVE for f in flags):
            return
        if time.monotonic() > deadline:
            raise CNIError(ErrorCode.INTERNAL, f"IPv6 addresses of {link.name} still tentative after {timeout:g}s")
        time.sleep(0.05)
