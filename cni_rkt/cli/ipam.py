"""`cni-rkt ipam list|reclaim`: see and release host-local reservations in a data dir.

    cni-rkt ipam list [--data-dir DIR] [--json] [NETWORK]
    cni-rkt ipam reclaim NETWORK (--valid CID[:IFNAME] ... | --container CID [--ifname IF]) [--dry-run]

Exit status: ACTIONS_EXIT_STATUS below (also shown by --help).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from functools import partial

from cni_rkt.cli.actions import add_action
from cni_rkt.cli.shown import shown, shown_text
from cni_rkt.cli.usage import UsageError, parse_valid


# Shown by each action's --help, as worker's are (the `ipam` parser itself lists the actions only).
ACTIONS_EXIT_STATUS = ("exit status: 0 done; 1 the data dir could not be read or changed, or has no such "
                       "network; 2 bad arguments")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cni_rkt.ipam.config import DEFAULT_DATA_DIR

    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = add_action(actions, "list", "show the reservations of every network, or of one (reads only)",
                         ACTIONS_EXIT_STATUS)
    listing.add_argument("network", nargs="?", help="only this network")
    reclaim = add_action(actions, "reclaim", "release reservations, as host-local's GC or DEL would",
                         ACTIONS_EXIT_STATUS)
    reclaim.add_argument("network", help="the network (its directory in the data dir)")
    which = reclaim.add_mutually_exclusive_group(required=True)
    which.add_argument("--valid", action="append", metavar="CID[:IFNAME]",
                       help="an attachment in use (repeatable); every other reservation is released")
    which.add_argument("--container", "--container-id", dest="container", metavar="CID",
                       help="release this container's reservations (--container-id as in `cni-rkt exec`)")
    reclaim.add_argument("--ifname", help="with --container: only this interface's (as DEL would)")
    reclaim.add_argument("--dry-run", action="store_true", help="print what would be released; change nothing")
    for sub in (listing, reclaim):
        sub.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                         help=f"host-local dataDir (default: {DEFAULT_DATA_DIR})")
        sub.add_argument("--json", action="store_true", help="machine-readable output")


def execute(args: argparse.Namespace) -> int:
    from cni_rkt.errors import CNIError

    try:
        if args.action == "list":
            return list_networks(args)
        return reclaim(args)
    except UsageError as exc:
        print(f"cni-rkt ipam: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # our reader went away: cli.main stops quietly
    except (CNIError, OSError) as exc:
        print(f"cni-rkt ipam: {exc}", file=sys.stderr)
        return 1


def list_networks(args: argparse.Namespace) -> int:
    from cni_rkt.errors import CNIError, ErrorCode
    from cni_rkt.ipam.inventory import list_reservations, network_names

    if args.network:
        listed = {args.network: list_reservations(args.data_dir, args.network)}
    else:
        listed = {}
        for name in network_names(args.data_dir):
            try:
                listed[name] = list_reservations(args.data_dir, name)
            except CNIError as exc:  # e.g. a symlink out of the data dir: say so, list the others
                if exc.code == ErrorCode.IO_FAILURE:
                    raise  # unreadable: a listing without it would show its addresses as free
                print(f"cni-rkt ipam: skipping {name}: {exc}", file=sys.stderr)
    if args.json:
        networks = [{"name": name, "reservations": [entry_dict(e) for e in entries]}
                    for name, entries in listed.items()]
        print(json.dumps({"dataDir": args.data_dir, "networks": networks}, indent=2))
        return 0
    if not listed:
        print(f"no networks in {shown(args.data_dir)}")
    for name, entries in listed.items():
        print(f"network {name}: {len(entries)} reservation{'' if len(entries) == 1 else 's'}")
        print_table([TABLE_HEADER] + [entry_row(e) for e in entries])
    return 0


def reclaim(args: argparse.Namespace) -> int:
    from cni_rkt.ipam import inventory

    if args.ifname is not None and args.container is None:
        raise UsageError("--ifname goes with --container")
    # An empty value (an unset "$VAR") must not widen the release to a whole container.
    if args.container == "":
        raise UsageError("--container: an empty container id")
    if args.ifname == "":
        raise UsageError("--ifname: an empty interface name")
    if args.valid:
        select = partial(inventory.stale, valid=parse_valid(args.valid))
    else:
        select = partial(inventory.held_by, container_id=args.container, ifname=args.ifname)
    if args.dry_run:
        released = select([entry.reservation for entry in inventory.list_reservations(args.data_dir, args.network)])
    else:
        released = inventory.release(args.data_dir, args.network, select)
    verb = "would release" if args.dry_run else "released"
    if args.json:
        print(json.dumps({"network": args.network, "dryRun": args.dry_run,
                          "released": [reservation_dict(r) for r in released]}, indent=2))
        return 0
    for reservation in released:
        print(f"{verb} {reservation.name} ({holder(reservation)})")
    print(f"{args.network}: {verb} {len(released)} reservation{'' if len(released) == 1 else 's'}")
    return 0


def holder(reservation) -> str:
    if reservation.ifname is None:
        return f"container {shown_text(reservation.container_id)}, legacy file without ifname"
    return f"container {shown_text(reservation.container_id)}, {shown_text(reservation.ifname)}"


def modified(mtime: float) -> str | None:
    """The file time in UTC; None for one no datetime can hold (a filesystem keeps any)."""
    try:
        return datetime.fromtimestamp(mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return None


TABLE_HEADER = ("ADDRESS", "CONTAINER", "IFNAME", "MODIFIED (UTC)", "")


def entry_row(entry) -> tuple[str, ...]:
    r = entry.reservation
    note = "legacy file: container id only" if entry.legacy else ""
    return (r.name, shown_text(r.container_id), shown_text(r.ifname or "-"), modified(entry.mtime) or "-", note)


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def reservation_dict(reservation) -> dict:
    return {
        "address": reservation.name,
        "containerID": reservation.container_id,
        "ifname": reservation.ifname,
        "legacy": reservation.ifname is None,
    }


def entry_dict(entry) -> dict:
    return dict(reservation_dict(entry.reservation), modified=modified(entry.mtime))
