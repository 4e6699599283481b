"""IPAM parity: what host-local and static reject when a pod starts, checked before it does.

Messages quote the plugin's own wording where it has one. Addresses use the standard library's
ipaddress (cheap to import, and enough for containment and overlap).
"""

from __future__ import annotations

import ipaddress
import re
from collections import namedtuple

from cni_rkt.validate.document import Document, pointer_join
from cni_rkt.validate.findings import Severity
from cni_rkt.validate.protocol_checks import effective_version, version_tuple

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Values that are not addresses yet: template placeholders, Calico's magic subnet.
PLACEHOLDER = re.compile(r"\{\{.*\}\}|__[A-Z0-9_]+__|^\$\{?\w+\}?$|^usePodCidr(IPv6)?$")
CALICO_POD_CIDR = re.compile(r"^usePodCidr(IPv6)?$")


# Plugins that install the pod's routes with ipam.ConfigureIface: a route without "gw" goes via the
# range's gateway, which must then be on-link (ptp adds a host route to its gateway first).
ROUTES_VIA_GATEWAY = ("bridge", "macvlan", "ipvlan")


def families_routed_via_gateway(ipam: dict, default_route: bool) -> frozenset[int]:
    """IP versions whose routes use the range's gateway: routes without gw, and bridge's isDefaultGateway."""
    families = {4, 6} if default_route else set()
    for route in list_at(ipam, "routes"):
        if isinstance(route, dict) and "gw" not in route and isinstance(route.get("dst"), str):
            families.add(6 if ":" in route["dst"] else 4)
    return frozenset(families)


def routes_go_via(gateway: Address, routed_families: frozenset[int]) -> bool:
    return gateway.version in routed_families and not gateway.is_link_local  # link-local is always on-link


def off_link_effect(gateway: Address) -> str:
    return (f"the pod's routes go via it, and it is not on-link: the plugin fails with: failed to add route ... "
            f"via {gateway} ...: network is unreachable")


# One allocation range of host-local: where it is written, its network, first/last address
# and the gateway it hands out (its "gateway", else the network's first address).
Range = namedtuple("Range", "pointer network start end gateway")


def list_at(obj: dict, key: str) -> list:
    """obj[key] when it is a list; a wrong type is the schema's to report, not a reason to crash."""
    value = obj.get(key)
    return value if isinstance(value, list) else []


def parse_cidr(doc: Document, pointer: str, text: object) -> tuple[Address, Network] | None:
    """(address as written, network) or None after reporting why not."""
    if not isinstance(text, str) or PLACEHOLDER.search(text):
        return None  # wrong types are the schema's; placeholders are CNI104's
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        doc.emit("CNI108", pointer, f"invalid CIDR address: {text} (expected an address/prefix such as 10.22.0.0/16)")
        return None
    if "/" not in text:
        doc.emit("CNI108", pointer, f"invalid CIDR address: {text} (the prefix length is missing)")
        return None
    return interface.ip, interface.network


def parse_ip(doc: Document, pointer: str, text: object) -> Address | None:
    if not isinstance(text, str) or PLACEHOLDER.search(text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        doc.emit("CNI108", pointer, f"invalid IP address: {text}")
        return None


def check_ipam(doc: Document, pointer: str, ipam: dict, *, gateway_severity: Severity | None = None,
               own_ranges: bool = True, routed_families: frozenset[int] = frozenset()) -> list[Range]:
    """Check one ipam object; returns host-local's ranges for the directory checks.

    own_ranges=False: a meta plugin (flannel) fills in the ranges, so only routes and dns are checked.
    """
    ipam_type = ipam.get("type")
    for index, route in enumerate(list_at(ipam, "routes")):
        if isinstance(route, dict):
            check_route(doc, pointer_join(pointer, "routes", index), route)
    check_dns(doc, pointer_join(pointer, "dns"), ipam.get("dns"))
    if ipam_type == "host-local" and own_ranges:
        return check_host_local(doc, pointer, ipam, gateway_severity, routed_families)
    if ipam_type == "host-local" and "subnet" in ipam:
        doc.emit("CNI107", pointer_join(pointer, "subnet"), "flannel replaces only \"ranges\": host-local gets this "
                 "subnet as range set 0 beside subnet.env's subnet (it fails with: range set 1 overlaps with 0, or "
                 "gives the pod a second address); leave the subnet to flannel")
    if ipam_type == "static":
        check_static(doc, pointer, ipam, routed_families)
    return []


def check_route(doc: Document, pointer: str, route: dict) -> None:
    parsed = parse_cidr(doc, pointer_join(pointer, "dst"), route.get("dst"))
    if parsed and parsed[0] != parsed[1].network_address:
        # The plugins hand the address as written to netlink: Linux refuses it for IPv4 and masks it for IPv6.
        if parsed[1].version == 4:
            effect, severity = ("the pod's ADD fails: the kernel refuses the route with \"Invalid prefix for "
                                "given prefix length\""), Severity.ERROR
        else:
            effect, severity = "the kernel masks it to that network", Severity.WARNING
        doc.emit("CNI200", pointer_join(pointer, "dst"), f"route dst {route['dst']} has host bits set: the route's "
                 f"network is {parsed[1]}; write that ({effect})", severity=severity)
    if "gw" in route:
        parse_ip(doc, pointer_join(pointer, "gw"), route["gw"])


def check_dns(doc: Document, pointer: str, dns: object) -> None:
    if isinstance(dns, dict):
        for index, server in enumerate(list_at(dns, "nameservers")):
            parse_ip(doc, pointer_join(pointer, "nameservers", index), server)


def check_host_local(doc: Document, pointer: str, ipam: dict, gateway_severity: Severity | None,
                     routed_families: frozenset[int]) -> list[Range]:
    range_sets: list[tuple[str, list[dict]]] = []
    if "subnet" in ipam:  # the legacy single range is folded in first, as the plugin does
        range_sets.append((pointer, [ipam]))
    ranges = ipam.get("ranges")
    if isinstance(ranges, list):
        for index, range_set in enumerate(ranges):
            if isinstance(range_set, list):
                range_sets.append((pointer_join(pointer, "ranges", index), range_set))
    if not range_sets:
        doc.emit("CNI206", pointer, "host-local has neither \"subnet\" nor \"ranges\" (the plugin fails with: "
                 "no IP ranges specified)")
        return []
    checked: list[list[Range]] = []
    for set_pointer, range_set in range_sets:
        in_set = []
        for index, entry in enumerate(range_set):
            if not isinstance(entry, dict):
                continue
            entry_pointer = set_pointer if entry is ipam else pointer_join(set_pointer, index)
            parsed = check_range(doc, entry_pointer, entry, gateway_severity, routed_families)
            if parsed:
                in_set.append(parsed)
        if not range_set and set_pointer != pointer:
            doc.emit("CNI203", set_pointer, "empty range set (the plugin fails with: empty range set)")
        check_range_set(doc, set_pointer, in_set)
        checked.append(in_set)
    check_between_sets(doc, checked)
    check_addresses_per_family(doc, pointer, [[r.network for r in s] for s in checked])
    return [r for s in checked for r in s]


def check_range(doc: Document, pointer: str, entry: dict, gateway_severity: Severity | None,
                routed_families: frozenset[int]) -> Range | None:
    subnet_pointer = pointer_join(pointer, "subnet")
    if "subnet" in entry and entry["subnet"] is None:  # elsewhere null is an absent key, here not
        doc.emit("CNI108", subnet_pointer, "invalid CIDR address:  (host-local reads a null subnet as an empty "
                 "one and fails; remove the key)")
        return None
    parsed = parse_cidr(doc, subnet_pointer, entry.get("subnet"))
    if parsed is None:
        return None
    written, network = parsed
    if written != network.network_address:
        doc.emit("CNI200", subnet_pointer, f"subnet {entry['subnet']} has host bits set (host-local fails with: "
                 f"Network has host bits set. For a subnet mask of length {network.prefixlen} the network "
                 f"address is {network.network_address}); write {network}")
    if network.prefixlen > network.max_prefixlen - 2:
        doc.emit("CNI204", subnet_pointer, f"Network {network} too small to allocate from (host-local needs "
                 f"a prefix of /{network.max_prefixlen - 2} or shorter)")
        return None
    first = network.network_address + 1
    last = network.broadcast_address - (1 if network.version == 4 else 0)
    start = bound(doc, pointer, entry, "rangeStart", network, first)
    end = bound(doc, pointer, entry, "rangeEnd", network, last)
    if start is None or end is None:
        return None
    if start > end:
        doc.emit("CNI202", pointer_join(pointer, "rangeStart"), f"rangeStart {start} is after rangeEnd {end} "
                 f"(host-local fails with: RangeEnd {end} not in network {network})")
        return None
    gateway = None
    if "gateway" in entry:
        gateway = parse_ip(doc, pointer_join(pointer, "gateway"), entry["gateway"])
        if gateway is not None and gateway not in network:
            effect, severity = "host-local before v0.8.0, as bundled with rkt, fails with: gateway not in network", \
                gateway_severity
            if routes_go_via(gateway, routed_families):
                effect, severity = off_link_effect(gateway), Severity.ERROR
            doc.emit("CNI205", pointer_join(pointer, "gateway"), f"gateway {gateway} is outside subnet {network} "
                     f"({effect})", severity=severity)
    return Range(pointer, network, start, end, network.network_address + 1 if gateway is None else gateway)


def bound(doc: Document, pointer: str, entry: dict, key: str, network: Network, default: Address) -> Address | None:
    if key not in entry:
        return default
    address = parse_ip(doc, pointer_join(pointer, key), entry[key])
    if address is None:
        return None
    if address.version != network.version or address not in network:
        doc.emit("CNI201", pointer_join(pointer, key), f"{key} {address} is outside subnet {network} (host-local "
                 f"fails with: {key[0].upper()}{key[1:]} {address} not in network {network})")
        return None
    return address


def check_range_set(doc: Document, pointer: str, ranges: list[Range]) -> None:
    if len({r.network.version for r in ranges}) > 1:
        doc.emit("CNI207", pointer, "IPv4 and IPv6 ranges in one range set (host-local fails with: mixed address "
                 "families); give each family its own set")
        return
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            if overlaps(a, b):
                doc.emit("CNI203", b.pointer, f"range {b.start}-{b.end} overlaps range {a.start}-{a.end} in the "
                         f"same set (host-local fails with: subnets {a.start}-{a.end} and {b.start}-{b.end} overlap)")


def check_between_sets(doc: Document, sets: list[list[Range]]) -> None:
    for i, first in enumerate(sets):
        for j in range(i + 1, len(sets)):
            if any(overlaps(a, b) for a in first for b in sets[j]):
                doc.emit("CNI203", sets[j][0].pointer, f"range set {j} overlaps range set {i} (host-local fails "
                         f"with: range set {j} overlaps with {i})")


def check_addresses_per_family(doc: Document, pointer: str, networks_per_set: list[list[Network]]) -> None:
    version = effective_version(doc)
    if version_tuple(version) >= (0, 3, 0):
        return
    for family in (4, 6):
        if sum(1 for nets in networks_per_set if nets and nets[0].version == family) > 1:
            doc.emit("CNI208", pointer, f"more than one IPv{family} range set with cniVersion {version} (the plugin "
                     f"fails with: CNI version {version} does not support more than 1 address per family)")


def overlaps(a: Range, b: Range) -> bool:
    return a.network.version == b.network.version and a.start <= b.end and b.start <= a.end


def check_static(doc: Document, pointer: str, ipam: dict, routed_families: frozenset[int]) -> None:
    families = []
    for index, entry in enumerate(list_at(ipam, "addresses")):
        if not isinstance(entry, dict):
            continue
        entry_pointer = pointer_join(pointer, "addresses", index)
        parsed = parse_cidr(doc, pointer_join(entry_pointer, "address"), entry.get("address"))
        if parsed:
            families.append([parsed[1]])
        if "gateway" in entry:
            gateway = parse_ip(doc, pointer_join(entry_pointer, "gateway"), entry["gateway"])
            if parsed and gateway is not None and gateway not in parsed[1] and routes_go_via(gateway, routed_families):
                doc.emit("CNI205", pointer_join(entry_pointer, "gateway"), f"gateway {gateway} is outside {parsed[1]} "
                         f"of address {entry['address']} ({off_link_effect(gateway)})", severity=Severity.ERROR)
    check_addresses_per_family(doc, pointer, families)
