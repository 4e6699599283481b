"""host-local at 60,000 reservations: allocation and release, ours against the Go plugin.

    sudo .venv/bin/python benchmarks/ipam_scale.py [--reservations 60000] [--rounds 30]

Not a test. A /16 network directory is filled with reservation files as the Go plugin
writes them (`containerID\\r\\nifname`), then each implementation allocates and releases
one address per round (ADD then DEL of a new container). Ours is timed twice: the
operation alone (`runner.run` in this process, which is what the worker's child runs),
and as a whole exec of the launcher; the Go plugin as a whole exec. Everything runs
inside a sandbox netns (host-local touches no network, but no plugin runs in the
machine's own namespace). Each implementation gets its own copy of the directory.
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests"), os.path.join(REPO, "benchmarks")]

NETWORK = "scale"
SUBNET_PREFIX = "10.22"


def config(data_dir: str) -> bytes:
    ipam = {"type": "host-local", "subnet": f"{SUBNET_PREFIX}.0.0/16", "dataDir": data_dir}
    return json.dumps({"cniVersion": "1.0.0", "name": NETWORK, "type": "bridge", "ipam": ipam}).encode()


def fill(data_dir: str, count: int) -> None:
    """`count` reservations from .2 upwards, and Go's last_reserved_ip marker at the last one."""
    network = os.path.join(data_dir, NETWORK)
    os.makedirs(network)
    last = ""
    for n in range(2, count + 2):
        last = f"{SUBNET_PREFIX}.{n >> 8}.{n & 255}"
        with open(os.path.join(network, last), "w") as f:
            f.write(f"filler{n}\r\neth0")
    with open(os.path.join(network, "last_reserved_ip.0"), "w") as f:
        f.write(last)


def env(command: str, container: str, cni_path: str) -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, "CNI_CONTAINERID": container,
            "CNI_NETNS": "/proc/self/ns/net", "CNI_IFNAME": "eth0", "CNI_PATH": cni_path}


def in_process(data_dir: str, rounds: int) -> dict[str, list[float]]:
    from cni_rkt.protocol.runner import run

    stdin = config(data_dir)
    times: dict[str, list[float]] = {"first ADD (index built)": [], "ADD": [], "DEL": []}
    for i in range(rounds + 1):
        for verb in ("ADD", "DEL"):
            start = time.perf_counter()
            out, code = run("host-local", env(verb, f"bench{i}", "/nonexistent"), stdin)
            elapsed = (time.perf_counter() - start) * 1000
            if code != 0:
                raise RuntimeError(f"{verb} failed: {out.decode()}")
            times["first ADD (index built)" if (i, verb) == (0, "ADD") else verb].append(elapsed)
    return times


def by_exec(executable: str, data_dir: str, rounds: int, cni_path: str) -> dict[str, list[float]]:
    from execs import timed_exec

    stdin = config(data_dir)
    times: dict[str, list[float]] = {"ADD": [], "DEL": []}
    for i in range(rounds):
        for verb in ("ADD", "DEL"):
            sample = timed_exec(executable, env(verb, f"exec{i}", cni_path), stdin)
            if sample.code != 0:
                raise RuntimeError(f"{executable} {verb} failed: {sample.stdout.decode()}")
            times[verb].append(sample.ms)
    return times


def inner(spec: dict) -> dict:
    return {
        "ours, operation in-process": in_process(spec["ours_in_process"], spec["rounds"]),
        "ours, whole exec (worker)": by_exec(spec["ours_launcher"], spec["ours_exec"], spec["rounds"], spec["bin"]),
        "Go, whole exec": by_exec("/usr/lib/cni/host-local", spec["go"], spec["go_rounds"], "/usr/lib/cni"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reservations", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=30, help="ADD+DEL rounds for ours")
    parser.add_argument("--go-rounds", type=int, default=5, help="ADD+DEL rounds for Go (slow: it reads every file)")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(inner(json.loads(args.inner))))
        return 0
    if os.geteuid() != 0:
        print("needs root (sandbox netns)", file=sys.stderr)
        return 2
    from sandbox import Sandbox
    from worker_process import end_background_workers

    from cni_rkt.launcher import install_launchers

    with tempfile.TemporaryDirectory(prefix="cni-rkt-ipam-") as tmp:
        template = os.path.join(tmp, "template")
        fill(template, args.reservations)
        spec = {"rounds": args.rounds, "go_rounds": args.go_rounds, "bin": os.path.join(tmp, "bin")}
        for name in ("ours_in_process", "ours_exec", "go"):
            spec[name] = os.path.join(tmp, name)
            shutil.copytree(template, spec[name])
        sockets = os.path.join(tmp, "sockets")
        spec["ours_launcher"] = install_launchers(spec["bin"], plugins=("host-local",), worker_socket_dir=sockets)[0]
        box = Sandbox()
        try:
            done = box.run([sys.executable, __file__, "--inner", json.dumps(spec)], timeout=3600)
        finally:
            end_background_workers(sockets)
            box.close()
    if done.returncode != 0:
        print(done.stderr.decode(errors="replace"), file=sys.stderr)
        return 1
    print(f"host-local, {args.reservations} reservations in a /16")
    print("| what | verb | median ms | p95 ms | max ms | runs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for what, verbs in done.json().items():
        for verb, times in verbs.items():
            ordered = sorted(times)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            print(f"| {what} | {verb} | {statistics.median(times):.2f} | {p95:.2f} | {max(times):.2f} | {len(times)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
