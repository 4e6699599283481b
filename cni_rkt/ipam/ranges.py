"""Ranges and range sets of host-local, canonicalized and compared as the reference does.

A `Range` is one subnet with its first and last allocatable address and its gateway; a
`RangeSet` is the ranges one address is taken from. Defaults follow the reference's code
(not its docs): the first address is network+1 (the gateway is skipped while
iterating), the last is the broadcast minus one for IPv4 and the all-ones address for
IPv6, the gateway is network+1. Messages keep the reference's wording, with the JSON
key spelled as in the config.

Addresses are the standard library's `ipaddress` values (importing netaddr cost every
host-local exec ~35 ms); arithmetic is on plain ints. Text is parsed by inet_pton (no
short IPv4 forms, no zone) and printed in RFC 5952 form, as Go prints it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


class RangeError(ValueError):
    """A range the reference would refuse; `key` names the offending JSON key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def parse_ip(text: str) -> Address:
    """A strict address (no short IPv4 forms, no zone); IPv4-mapped IPv6 becomes IPv4, as in Go."""
    try:
        return IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, TypeError, ValueError):
        pass
    try:
        address = IPv6Address(socket.inet_pton(socket.AF_INET6, text))
    except (OSError, TypeError, ValueError):
        raise ValueError(f"invalid IP address: {text}") from None
    return address.ipv4_mapped or address


def address_from_int(version: int, number: int) -> Address:
    return IPv4Address(number) if version == 4 else IPv6Address(number)




def parse_cidr(text: str) -> tuple[Address, int]:
    """`addr/prefix` keeping host bits (the caller decides whether they are allowed)."""
    address, sep, prefix = text.partition("/")
    try:
        ip = parse_ip(address)
    except ValueError:
        ip = None
    if not sep or ip is None or not (prefix.isascii() and prefix.isdigit()) or int(prefix) > ip.max_prefixlen:
        raise ValueError(f"invalid CIDR address: {text}")
    return ip, int(prefix)


def parse_ip_maybe_prefix(text: str) -> Address:
    """A requested IP: `10.1.0.5` or `10.1.0.5/24`; the prefix must be valid, then it is ignored."""
    if "/" not in text:
        return parse_ip(text)
    try:
        return parse_cidr(text)[0]
    except ValueError:
        raise ValueError(f"invalid IP address: {text}") from None


@dataclass(frozen=True, slots=True)
class Range:
    subnet: Network
    start: Address
    end: Address
    gateway: Address

    @property
    def version(self) -> int:
        return self.subnet.version

    @property
    def prefix(self) -> int:
        return self.subnet.prefixlen

    def contains(self, address: Address) -> bool:
        return address.version == self.version and self.start <= address <= self.end

    def overlaps(self, other: Range) -> bool:
        if self.version != other.version:
            return False
        return self.start <= other.end and other.start <= self.end

    def size(self) -> int:
        """How many addresses can be handed out (the gateway never is)."""
        return int(self.end) - int(self.start) + 1 - (1 if self.contains(self.gateway) else 0)

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


@dataclass(frozen=True, slots=True)
class RangeSet:
    ranges: tuple[Range, ...]

    @property
    def version(self) -> int:
        return self.ranges[0].version

    def range_for(self, address: Address) -> Range | None:
        return next((r for r in self.ranges if r.contains(address)), None)

    def contains(self, address: Address) -> bool:
        return self.range_for(address) is not None

    def overlaps(self, other: RangeSet) -> bool:
        return any(a.overlaps(b) for a in self.ranges for b in other.ranges)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)


def _ip_or_default(key: str, text: str | None, default: Address) -> Address:
    """An address given is kept even when it is 0.0.0.0 or ::, as Go keeps a non-nil IP."""
    if text is None:
        return default
    try:
        return parse_ip(text)
    except ValueError as exc:
        raise RangeError(key, str(exc)) from None


def _check_inside(key: str, address: Address, subnet: Network) -> None:
    if address.version != subnet.version or address not in subnet:
        raise RangeError(key, f"{key} {address} not in network {subnet}")


def canonical_range(
    subnet: str, range_start: str | None = None, range_end: str | None = None, gateway: str | None = None
) -> Range:
    """Fill in the defaults and check the range the way the reference's Canonicalize does."""
    try:
        network_ip, prefix = parse_cidr(subnet)
    except ValueError as exc:
        raise RangeError("subnet", str(exc)) from None
    if prefix > network_ip.max_prefixlen - 2:
        raise RangeError("subnet", f"Network {network_ip}/{prefix} too small to allocate from")
    network_class = IPv4Network if network_ip.version == 4 else IPv6Network
    network = network_class((network_ip, prefix), strict=False)
    if network.network_address != network_ip:
        raise RangeError(
            "subnet",
            f"Network has host bits set. For a subnet mask of length {prefix} "
            f"the network address is {network.network_address}",
        )
    first = network.network_address + 1
    # IPv4 keeps its broadcast address out of the range; IPv6 has none.
    last = network.broadcast_address - (1 if network.version == 4 else 0)
    gw = _ip_or_default("gateway", gateway, first)  # Go takes one of the other family as it is
    start = _ip_or_default("rangeStart", range_start, first)
    end = _ip_or_default("rangeEnd", range_end, last)
    _check_inside("rangeStart", start, network)
    _check_inside("rangeEnd", end, network)
    # Go 1.1.1 refuses this only when rangeEnd is given; a rangeStart on the IPv4 broadcast
    # address without one makes it hand out the broadcast address, then ones past the subnet.
    if start > end:
        raise RangeError("rangeStart", f"rangeStart {start} is after rangeEnd {end}")
    return Range(subnet=network, start=start, end=end, gateway=gw)


def canonical_range_set(ranges: list[Range]) -> RangeSet:
    """One family, no overlaps inside the set (messages as the reference's)."""
    if not ranges:
        raise ValueError("empty range set")
    if any(r.version != ranges[0].version for r in ranges):
        raise ValueError("mixed address families")
    for i, first in enumerate(ranges):
        for second in ranges[i + 1 :]:
            if first.overlaps(second):
                raise ValueError(f"subnets {first} and {second} overlap")
    return RangeSet(tuple(ranges))
