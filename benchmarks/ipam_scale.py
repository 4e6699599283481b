"""host-local at scale: allocation and release with 60,000 reservations in a /16.

Compares our host-local with Debian's Go host-local (/usr/lib/cni/host-local) on the
same pre-filled store (files as the Go plugin writes them). For ours it also shows the
in-process cost (run() without interpreter start-up) and the one-time index rebuild
that follows a change made behind our back. Not a test: prints a table.

    python benchmarks/ipam_scale.py [--reservations 60000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cni_rkt.launcher import install_launchers  # noqa: E402
from cni_rkt.protocol.runner import run  # noqa: E402

GO_HOST_LOCAL = "/usr/lib/cni/host-local"
SUBNET_PREFIX = "10.20"


def fill(data_dir: str, count: int) -> None:
    """`count` reservations in 10.20.0.0/16, from 10.20.0.2 up, plus the round-robin hint."""
    net = os.path.join(data_dir, "big")
    os.makedirs(net)
    for i in range(count):
        n = i + 2
        with open(os.path.join(net, f"{SUBNET_PREFIX}.{n >> 8}.{n & 255}"), "w") as f:
            f.write(f"pre{i}\r\neth0")
    last = count + 1
    with open(os.path.join(net, "last_reserved_ip.0"), "w") as f:
        f.write(f"{SUBNET_PREFIX}.{last >> 8}.{last & 255}")


def config(data_dir: str) -> bytes:
    ipam = {"type": "host-local", "subnet": f"{SUBNET_PREFIX}.0.0/16", "dataDir": data_dir}
    return json.dumps({"cniVersion": "1.0.0", "name": "big", "type": "host-local", "ipam": ipam}).encode()


def env(command: str, cid: str) -> dict[str, str]:
    return {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/x", "CNI_IFNAME": "eth0",
            "CNI_PATH": "/x", "PATH": "/usr/bin:/bin"}


def exec_ms(executable: str, command: str, cid: str, stdin: bytes) -> float:
    began = time.perf_counter()
    proc = subprocess.run([executable], input=stdin, env=env(command, cid), capture_output=True, check=False)
    elapsed = (time.perf_counter() - began) * 1000
    if proc.returncode:
        raise SystemExit(f"{executable} {command} {cid} failed: {proc.stdout.decode()}")
    return elapsed


def in_process_ms(command: str, cid: str, stdin: bytes) -> float:
    began = time.perf_counter()
    out, code = run("host-local", env(command, cid), stdin)
    elapsed = (time.perf_counter() - began) * 1000
    if code:
        raise SystemExit(f"in-process {command} {cid} failed: {out.decode()}")
    return elapsed


def summarize(rows: list, label: str, op: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    rows.append((label, op, statistics.median(samples), p90, len(samples)))


def measure(label: str, rounds: int, add, delete) -> list:
    rows: list = []
    tag = "".join(c for c in label if c.isalnum())
    summarize(rows, label, "ADD", [add(f"new-{tag}-{i}") for i in range(rounds)])
    summarize(rows, label, "DEL", [delete(f"pre{i * 997}") for i in range(rounds)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reservations", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--go-rounds", type=int, default=3, help="the Go DEL walks the whole store")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="ipam-scale-")
    try:
        launchers = os.path.join(workdir, "bin")
        # Ours runs through its pre-loaded worker, on a socket of this run's own.
        workers = os.path.join(workdir, "workers")
        ours = install_launchers(launchers, plugins=("host-local",), worker_socket_dir=workers)[0]
        dirs = {name: os.path.join(workdir, name) for name in ("go", "ours", "inproc")}
        for path in dirs.values():
            fill(path, args.reservations)
        rows = []
        if os.path.exists(GO_HOST_LOCAL):
            stdin = config(dirs["go"])
            rows += measure("go (exec)", args.go_rounds, lambda c: exec_ms(GO_HOST_LOCAL, "ADD", c, stdin),
                            lambda c: exec_ms(GO_HOST_LOCAL, "DEL", c, stdin))
        stdin = config(dirs["ours"])
        rebuild = exec_ms(ours, "DEL", "nobody", stdin)  # first open: index built from the files
        rows += measure("ours (exec)", args.rounds, lambda c: exec_ms(ours, "ADD", c, stdin),
                        lambda c: exec_ms(ours, "DEL", c, stdin))
        stdin = config(dirs["inproc"])
        in_process_ms("DEL", "nobody", stdin)
        rows += measure("ours (in-process)", args.rounds, lambda c: in_process_ms("ADD", c, stdin),
                        lambda c: in_process_ms("DEL", c, stdin))
        startup = statistics.median(
            exec_ms(ours, "VERSION", "v", b"") for _ in range(args.rounds)
        )
        print(f"{args.reservations} reservations in {SUBNET_PREFIX}.0.0/16\n")
        print(f"{'implementation':<20} {'op':<4} {'median ms':>10} {'p90 ms':>10} {'n':>4}")
        for label, op, median, p90, n in rows:
            print(f"{label:<20} {op:<4} {median:>10.1f} {p90:>10.1f} {n:>4}")
        print(f"\nours: first call after a foreign change (index rebuild): {rebuild:.0f} ms")
        print(f"ours: VERSION exec (interpreter start-up, no store): {startup:.1f} ms")
    finally:
        from cni_rkt.worker.control import stop_workers

        stop_workers(os.path.join(workdir, "workers"))
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
