"""What an operator sees and reclaims of host-local's reservations (`cni-rkt ipam`).

Listing reads the files directly, without the lock or the index: it never writes, so it
is safe beside running plugins and works for a user who may only read. Reclaiming goes
through the store under its lock and releases exactly what host-local would:
- `stale`: what GC releases: every file whose attachment is not valid; a legacy file
  (container id only) is kept while its container has any valid attachment;
- `held_by`: what DEL releases: the container's files for that ifname, else its legacy
  ones; without an ifname, every file of the container.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.ipam.files import read_regular
from cni_rkt.ipam.index import Reservation
from cni_rkt.ipam.store import address_of_name, network_dir, open_store, parse_content
from cni_rkt.protocol import spec


class Held(Protocol):
    container_id: str
    ifname: str | None


@dataclass(frozen=True, slots=True)
class Listed:
    """One address file as found on disk."""

    network: str
    reservation: Reservation
    mtime: float

    @property
    def legacy(self) -> bool:
        return self.reservation.ifname is None


def network_names(data_dir: str) -> list[str]:
    """The network directories in `data_dir` (host-local's own names only), sorted."""
    try:
        names = os.listdir(data_dir)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CNIError(ErrorCode.IO_FAILURE, f"cannot read {data_dir}: {exc.strerror}") from exc
    return sorted(n for n in names if spec.NAME_PATTERN.match(n) and os.path.isdir(os.path.join(data_dir, n)))


def existing_network_dir(data_dir: str, network: str) -> str:
    """`data_dir/network` if it exists inside `data_dir`; never creates it."""
    directory = network_dir(data_dir, network)
    if not os.path.isdir(directory):
        raise CNIError(ErrorCode.INVALID_NETWORK_CONFIG, f'no network "{network}" in {data_dir}')
    return directory


def list_reservations(data_dir: str, network: str) -> list[Listed]:
    """The network's address files, sorted by address; read-only, no lock taken."""
    directory = existing_network_dir(data_dir, network)
    found = []
    for name in os.listdir(directory):
        address = address_of_name(name)
        if address is None:
            continue  # lock, last_reserved_ip.*, a scratch file
        read = read_address_file(os.path.join(directory, name))
        if read is None:
            continue
        data, mtime = read
        container_id, ifname = parse_content(data)
        found.append(Listed(network, Reservation(name, address[0], address[1], container_id, ifname), mtime))
    return sorted(found, key=lambda e: (e.reservation.family, e.reservation.number))


def read_address_file(path: str) -> tuple[bytes, float] | None:
    """Its bytes and time; None for what the store does not count either: a file gone
    meanwhile, a symlink, a directory, a FIFO (opened without waiting for a writer), a socket.
    A file that cannot be read (the store's are 0600) fails: leaving it out would show an
    address as free."""
    try:
        found = read_regular(path)
    except OSError as exc:
        raise CNIError(ErrorCode.IO_FAILURE, f"cannot read {path}: {exc.strerror}") from exc
    return (found[0], found[1].st_mtime) if found else None


def stale(held: Iterable[Held], valid: Iterable[tuple[str, str | None]]) -> list:
    """Those no valid attachment holds; (cid, None) in `valid` keeps all of cid's files."""
    valid = set(valid)
    whole_containers = {cid for cid, ifname in valid if ifname is None}
    valid_containers = {cid for cid, _ in valid}

    def kept(item: Held) -> bool:
        if item.container_id in whole_containers:
            return True
        if item.ifname is None:
            return item.container_id in valid_containers
        return (item.container_id, item.ifname) in valid

    return [item for item in held if not kept(item)]


def held_by(held: Iterable[Held], container_id: str, ifname: str | None) -> list:
    held = [item for item in held if item.container_id == container_id]
    if ifname is None:
        return held
    return [item for item in held if item.ifname == ifname] or [item for item in held if item.ifname is None]


def release(data_dir: str, network: str, select) -> list[Reservation]:
    """Release what `select(reservations)` picks, under the store's lock; return what went."""
    existing_network_dir(data_dir, network)
    with open_store(data_dir, network) as store:
        return [r for r in select(store.reservations()) if store.release_reservation(r)]
