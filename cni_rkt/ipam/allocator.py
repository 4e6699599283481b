"""Round-robin allocation over a Store, in the reference's order.

Pure: it reaches storage only through the `Store` protocol (ipam/store.py), so tests run
it over an in-memory store. The order is Go's GetIter: start just after the range set's
`last_reserved_ip` when that address is in the set, else at the first range's start;
walk the ranges in order, wrap, skip each range's gateway, and stop when back at the
start. Round-robin means a crash-looping pod does not get the same address again until
the set has cycled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from cni_rkt.errors import internal, invalid_config
from cni_rkt.ipam.ranges import Address, Range, RangeSet, address_from_int

if TYPE_CHECKING:
    from cni_rkt.ipam.store import Store

# How many taken addresses to fetch at a time while looking for a free one.
_TAKEN_BATCH = 256


class AllocationError(Exception):
    """This range set cannot give an address; the caller adds which range set it was."""


def assign_requested(
    range_sets: tuple[RangeSet, ...], requested: tuple[Address, ...]
) -> tuple[list[Address | None], list[Address]]:
    """Each requested IP goes to the first range set containing it; also return the leftovers."""
    remaining = list(requested)
    assigned: list[Address | None] = []
    for range_set in range_sets:
        ip = next((a for a in remaining if range_set.contains(a)), None)
        if ip is not None:
            remaining.remove(ip)
        assigned.append(ip)
    return assigned, remaining


def scan_order(range_set: RangeSet, last_reserved: Address | None) -> list[tuple[Range, int, int]]:
    """The candidate segments (range, first, last as ints), in Go's round-robin order."""
    ranges = range_set.ranges
    home = range_set.range_for(last_reserved) if last_reserved is not None else None
    if home is None:
        return [(r, int(r.start), int(r.end)) for r in ranges]
    k = ranges.index(home)
    after = int(last_reserved)
    segments = [(home, after + 1, int(home.end))] if after < int(home.end) else []
    for step in range(1, len(ranges)):
        following = ranges[(k + step) % len(ranges)]
        segments.append((following, int(following.start), int(following.end)))
    segments.append((home, int(home.start), after))  # the last reserved address comes last
    return segments


def free_candidates(store: Store, segment: tuple[Range, int, int]) -> Iterator[int]:
    """Addresses of the segment the store does not hold, skipping the gateway, in order."""
    rng, cursor, last = segment
    gateway = int(rng.gateway) if rng.gateway.version == rng.version else None  # another family's skips nothing
    while cursor <= last:
        taken = store.taken_between(rng.version, cursor, last, _TAKEN_BATCH)
        for held in taken:
            for free in range(cursor, held):
                if free != gateway:
                    yield free
            cursor = held + 1
        if len(taken) < _TAKEN_BATCH:
            break
    while cursor <= last:
        if cursor != gateway:
            yield cursor
        cursor += 1


def allocate(
    store: Store, range_set: RangeSet, index: int, container_id: str, ifname: str, requested: Address | None
) -> tuple[Address, Range]:
    """Reserve one address of `range_set` (index `index`) for (container_id, ifname)."""
    if requested is not None:
        if not store.reserve(requested, container_id, ifname, index):
            raise AllocationError(f"requested IP address {requested} is not available in range set {range_set}")
        return requested, range_set.range_for(requested)
    # Go names the first in its directory walk: file names in string order ("10.1.0.10" < "10.1.0.9").
    for held in sorted(store.held_by(container_id, ifname), key=str):
        if range_set.contains(held):
            raise AllocationError(f"{held} has been allocated to {container_id}, duplicate allocation is not allowed")
    for segment in scan_order(range_set, store.last_reserved(index)):
        for candidate in free_candidates(store, segment):
            ip = address_from_int(range_set.version, candidate)
            if store.reserve(ip, container_id, ifname, index):
                return ip, segment[0]
    raise AllocationError(f"no IP addresses available in range set: {range_set}")


def allocate_all(
    store: Store, range_sets: tuple[RangeSet, ...], requested: tuple[Address, ...], container_id: str, ifname: str
) -> list[tuple[Address, Range]]:
    """One address per range set, all or nothing: on failure release what this call reserved.

    Errors come in the reference's order (range set by range set, then requested IPs
    that fit no range set), so the same request gets the same message.
    """
    wanted, leftovers = assign_requested(range_sets, requested)
    reserved: list[tuple[Address, Range]] = []
    try:
        for index, range_set in enumerate(range_sets):
            ip = wanted[index]
            if ip is not None and ip == range_set.range_for(ip).gateway:
                msg = f"failed to allocate for range {index}: requested ip {ip} is subnet's gateway"
                raise invalid_config(msg, str(ip))
            try:
                reserved.append(allocate(store, range_set, index, container_id, ifname, ip))
            except AllocationError as exc:
                raise internal(f"failed to allocate for range {index}: {exc}") from None
        if leftovers:
            names = " ".join(str(a) for a in leftovers)
            raise invalid_config(f"failed to allocate all requested IPs: {names}", names)
    except Exception:
        for ip, _ in reserved:
            store.release(ip)
        raise
    return reserved
