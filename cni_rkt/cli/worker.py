"""`cni-rkt worker status|stop`: see and end the pre-loaded workers the plugins started.

    cni-rkt worker status [--socket-dir DIR] [--json]
    cni-rkt worker stop [--socket-dir DIR]

The socket dir is the one the launchers use: CNI_RKT_WORKER_SOCKET_DIR, else /run/cni-rkt
(a launcher installed with another one names it itself). `stop` sends SIGTERM: a worker
stops taking requests at once and ends when its running requests have replied; the next
plugin exec runs in-process and starts a new one, unless the worker is switched off.

Exit status: STATUS_EXIT and STOP_EXIT below (also shown by --help).
"""

from __future__ import annotations

import argparse
import json
import math
import os

from cni_rkt.cli.actions import add_action
from cni_rkt.cli.shown import shown

NONE_RUNNING = 3
STATUS_EXIT = "exit status: 0 a worker runs, 3 when none runs (as `systemctl status`)"
STOP_EXIT = ("exit status: 0 none is left running (also when none ran); 1 one still runs (it did not end "
             "within --wait seconds, or is another user's); 2 bad arguments")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cni_rkt.worker import identity

    default_dir = os.environ.get("CNI_RKT_WORKER_SOCKET_DIR") or identity.DEFAULT_SOCKET_DIR
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    status = add_action(actions, "status", "show the running workers, their memory and children", STATUS_EXIT)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    stop = add_action(actions, "stop", "end the running workers (their running requests finish first)", STOP_EXIT)
    stop.add_argument("--wait", type=seconds, default=30.0, help="seconds to wait for them to end (default: 30)")
    for sub in (status, stop):
        sub.add_argument("--socket-dir", default=default_dir, help=f"where their sockets are (default: {default_dir})")


def seconds(text: str) -> float:
    """A wait of zero or more seconds (NaN and negative waits would not wait at all)."""
    value = float(text)
    if not value >= 0:
        raise ValueError(text)
    return value


def execute(args: argparse.Namespace) -> int:
    return _status(args) if args.action == "status" else _stop(args)


def _status(args: argparse.Namespace) -> int:
    from cni_rkt.worker import control, identity

    workers = control.describe_workers(args.socket_dir)
    switched_off = os.path.exists(identity.NO_WORKER_FLAG)
    if args.json:
        print(json.dumps({
            "socketDir": args.socket_dir,
            "switchedOff": switched_off,
            "workers": [_as_json(w) for w in workers],
        }, indent=2))
        return 0 if workers else NONE_RUNNING
    if switched_off:
        print(f"the worker is switched off ({identity.NO_WORKER_FLAG} exists): plugins run in-process")
    if not workers:
        print(f"no cni-rkt worker serves sockets in {shown(args.socket_dir)}")
        return NONE_RUNNING
    for worker in workers:
        state = "listening" if worker.listening else "retired, finishing its requests"
        children = ", ".join(f"{pid} ({kib / 1024:.1f} MiB)" for pid, kib in worker.children.items()) or "none"
        print(f"worker {worker.pid}: {state} on {shown(worker.socket)}")
        print(f"  up {worker.uptime_seconds:.0f} s; {_idle_plan(worker.idle_seconds)}")
        print(f"  resident {worker.resident_kib / 1024:.1f} MiB (peak {worker.peak_resident_kib / 1024:.1f} MiB)")
        print(f"  children: {children}")
    return 0


def _idle_plan(idle: float) -> str:
    from cni_rkt.worker import identity

    if math.isinf(idle):
        return "without a request, it keeps its children and never ends"
    rest = idle * identity.REST_FRACTION
    return f"without a request, it lets its children go after {rest:g} s and ends after {idle:g} s"


def _as_json(worker) -> dict:
    return {
        "pid": worker.pid,
        "socket": worker.socket,
        "listening": worker.listening,
        "uptimeSeconds": round(worker.uptime_seconds, 1),
        "idleSeconds": worker.idle_seconds,
        "residentKiB": worker.resident_kib,
        "peakResidentKiB": worker.peak_resident_kib,
        "children": [{"pid": pid, "residentKiB": kib} for pid, kib in worker.children.items()],
    }


def _stop(args: argparse.Namespace) -> int:
    from cni_rkt.worker import control

    found = control.worker_pids(args.socket_dir)
    if not found:
        print(f"no cni-rkt worker serves sockets in {shown(args.socket_dir)}")
        return 0
    signalled = control.stop_workers(args.socket_dir, wait_seconds=args.wait)
    running = control.worker_pids(args.socket_dir)
    failed = 0
    for pid in found:
        if pid not in signalled:
            outcome = "not stopped: not ours to signal" if pid in running else "ended"
        else:
            outcome = f"still running after {args.wait:g} s" if pid in running else "ended"
        failed += outcome != "ended"
        print(f"worker {pid}: {outcome}")
    return 1 if failed else 0
