"""The host-local IPAM plugin: config -> allocator -> store -> Result.

Verbs only; the rules live in cni_rkt/ipam/. DEL releases by (container, ifname), also
legacy cid-only files, and succeeds when nothing is held. CHECK compares the
reservation with prevResult when it can read one (the reference reads none). GC (1.1.0)
releases what no valid attachment holds.
STATUS answers 50 when a range set has no free address.
"""

from __future__ import annotations

import os
from ipaddress import ip_address

from cni_rkt.errors import CNIError, ErrorCode, internal
from cni_rkt.ipam.allocator import allocate_all
from cni_rkt.ipam.config import CONFIG_SCHEMA, IpamConfig, clean_data_dir, load_dns, load_ipam_config
from cni_rkt.ipam.files import network_dir, scan_attachment
from cni_rkt.ipam.index import Reservation
from cni_rkt.protocol.json_keys import respell_keys
from cni_rkt.ipam.ranges import Range, parse_ip_maybe_prefix
from cni_rkt.ipam.store import DiskStore, open_store
from cni_rkt.protocol.invocation import Invocation
from cni_rkt.protocol.result import DNS, IPConfig, Result, prev_result
from cni_rkt.protocol.attachments import valid_attachments


def load_config(inv: Invocation) -> IpamConfig:
    return load_ipam_config(inv.decoded, inv.cni_args, inv.cni_version)


def add(inv: Invocation) -> Result:
    conf = load_config(inv)
    dns = load_dns(conf.resolv_conf) if conf.resolv_conf else DNS()
    with open_store(conf.data_dir, conf.network) as store:
        reserved = allocate_all(store, conf.range_sets, conf.requested_ips, inv.container_id, inv.ifname)
    ips = tuple(IPConfig(address=f"{ip}/{rng.prefix}", gateway=str(rng.gateway)) for ip, rng in reserved)
    return Result(cni_version=inv.cni_version, ips=ips, routes=conf.routes, dns=dns)


def delete(inv: Invocation) -> None:
    conf = load_config(inv)
    with open_store(conf.data_dir, conf.network) as store:
        exact = store.exact_reservations(inv.container_id, inv.ifname)
        legacy = store.legacy_reservations(inv.container_id)
        # Go releases once per range set, each time "exact files, else legacy ones": from
        # the second range set on, the exact ones are gone and the legacy ones go too.
        _release_all(store, exact + legacy if len(conf.range_sets) > 1 else exact or legacy)


def _release_all(store: DiskStore, reservations: list[Reservation]) -> None:
    """Release each one, going on after a failure (as DEL and GC should); then report."""
    failures = []
    for reservation in reservations:
        try:
            store.release_reservation(reservation)
        except CNIError as exc:
            failures.append(exc)
    if failures:
        raise CNIError(failures[0].code, "; ".join(f.msg for f in failures))


def check(inv: Invocation) -> None:
    conf = load_config(inv)
    with open_store(conf.data_dir, conf.network) as store:
        reservations = store.attachment_reservations(inv.container_id, inv.ifname)
    if not reservations:
        raise internal(f"host-local: Failed to find address added by container {inv.container_id}")
    try:
        previous = prev_result(inv.config, inv.cni_version)
    except CNIError:
        return  # one it cannot read is not compared: the reference reads no prevResult at all
    if previous is None:
        return
    # Both sides only within the configured ranges: a file left from an older range is no mismatch.
    held = {r.name for r in reservations if _in_ranges(conf, ip_address(r.name))}
    ours = {str(ip) for ip in (parse_ip_maybe_prefix(c.address) for c in previous.ips) if _in_ranges(conf, ip)}
    if ours != held:
        raise internal(
            f"host-local: addresses of container {inv.container_id} do not match prevResult",
            f"reserved [{' '.join(sorted(held))}], prevResult [{' '.join(sorted(ours))}]",
        )


def _in_ranges(conf: IpamConfig, ip) -> bool:
    return any(rs.contains(ip) for rs in conf.range_sets)


def gc(inv: Invocation) -> None:
    conf = load_config(inv)
    valid = valid_attachments(inv.config)
    valid_containers = {cid for cid, _ in valid}
    with open_store(conf.data_dir, conf.network) as store:
        _release_all(store, [r for r in store.reservations() if not _is_valid(r, valid, valid_containers)])


def _is_valid(reservation: Reservation, valid: set[tuple[str, str]], valid_containers: set[str]) -> bool:
    """Legacy files name only the container, so any live attachment of it keeps them."""
    if reservation.ifname is None:
        return reservation.container_id in valid_containers
    return (reservation.container_id, reservation.ifname) in valid


def status(inv: Invocation) -> None:
    conf = load_config(inv)
    with open_store(conf.data_dir, conf.network) as store:
        for index, range_set in enumerate(conf.range_sets):
            if not any(_has_free_address(store, rng) for rng in range_set.ranges):
                raise CNIError(
                    ErrorCode.NOT_AVAILABLE, f"no IP addresses available in range set {index}: {range_set}"
                )


def _has_free_address(store: DiskStore, rng: Range) -> bool:
    taken = store.count_between(rng.version, int(rng.start), int(rng.end))
    if rng.contains(rng.gateway):  # size() leaves the gateway out: so must the count, if a file holds it
        gateway = int(rng.gateway)
        taken -= store.count_between(rng.version, gateway, gateway)
    return taken < rng.size()


def reserved_ips(config: dict, container_id: str, ifname: str) -> list[str]:
    """The addresses (container_id, ifname) holds on this network, read-only.

    For the bridge plugin's DEL when the netns is gone; [] when nothing is stored yet.
    """
    config = respell_keys(config, CONFIG_SCHEMA)
    ipam = config.get("ipam") if isinstance(config.get("ipam"), dict) else {}
    data_dir = clean_data_dir(ipam.get("dataDir"))
    directory = network_dir(data_dir, config.get("name"))
    if not os.path.isdir(directory):
        return []
    try:
        with open_store(data_dir, config["name"]) as store:
            return [r.name for r in store.attachment_reservations(container_id, ifname)]
    except CNIError:  # say, a read-only data dir: read the files themselves
        return scan_attachment(directory, container_id, ifname)
