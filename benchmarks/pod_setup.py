"""Pod network set-up: our plugins against Debian's Go plugins, in one run, in sandboxes.

    sudo .venv/bin/python benchmarks/pod_setup.py [--pods 30] [--parallel-pods 100] [--workers 4]
                                                  [--python /usr/bin/python3] [--rounds 1]

Not a test. Each implementation gets its own sandbox (a host netns and pod netns, see
tests/sandbox.py) and its own host-local dataDir; the config is the seed's
rkt.kubernetes.io bridge network at cniVersion 1.0.0, with ipMasq on and off. Scenarios:
sequential (ADD every pod, CHECK every pod, DEL every pod), parallel (ADD then DEL
`--parallel-pods` pods from `--workers` threads), sporadic (a pod now and then: each ADD and
DEL after a pause in which our worker rests, letting its children go), plus VERSION probes. The two
implementations alternate scenario by scenario, so that both see the same machine.
`--rounds N` repeats the whole series (who goes first alternating too) and pools the
samples: a virtual machine's speed drifts by tens of percent within minutes, and the
spread of the rounds' ratios shows how much one round's ratio can be trusted.

Each exec is timed alone, exec to exit, by benchmarks/execs.py running inside the sandbox
host netns. Peak memory is each plugin process's own ru_maxrss (wait4); our worker's
resident memory is reported beside it, since its children do the work. Our launchers run
on `--python` (default: this interpreter; scripts/setup.sh's .venv uses Debian's
/usr/bin/python3, whose start-up is faster than a shared-library build's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]

from sandbox import Sandbox  # noqa: E402
from worker_process import end_background_workers, worker_socket  # noqa: E402

from cni_rkt.launcher import install_launchers  # noqa: E402
from cni_rkt.worker.control import describe_workers  # noqa: E402

GO_DIR = "/usr/lib/cni"
# The sporadic scenario's worker: its own socket dir, and an idle time that makes it rest
# (identity.REST_FRACTION of it: 1 s) within each pause, but not exit.
SPORADIC_IDLE_SECONDS = 10.0
SPORADIC_PAUSE_SECONDS = 2.0
SEED_CONFIG = os.path.join(REPO, "examples", "rkt", "net.d", "10-rkt.kubernetes.io.conf")
EXECS = os.path.join(REPO, "benchmarks", "execs.py")
IMPLEMENTATIONS = ("go", "ours")


def write_config(directory: str, name: str, ip_masq: bool) -> str:
    with open(SEED_CONFIG) as f:
        config = json.load(f)
    config["cniVersion"] = "1.0.0"
    config["ipMasq"] = ip_masq
    config["ipam"]["dataDir"] = os.path.join(directory, "data", name)
    path = os.path.join(directory, f"{name}.conf")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def run_in_sandbox(box: Sandbox, spec: dict) -> dict:
    done = box.run([sys.executable, EXECS, json.dumps(spec)], timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark run failed: {done.stderr.decode(errors='replace')}")
    return done.json()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summarize(run: dict, verb: str) -> dict:
    samples = run["samples"][verb]
    ms = [s["ms"] for s in samples]
    wall = run["wall"].get(verb)
    peak = run["memory"].get(verb)
    return {
        "median": statistics.median(ms),
        "p95": percentile(ms, 0.95),
        "per_s": len(ms) / wall if wall else 1000 * len(ms) / sum(ms),
        "peak": f"{peak / 1024:.1f}" if peak else "",
        "failures": [s["failure"] for s in samples if s["code"] != 0],
    }


def worker_memory(sockets: str) -> str:
    """The worker's and its children's resident memory, read before they are ended."""
    workers = describe_workers(sockets)
    if not workers:
        return "no worker running"
    worker = workers[0]
    children = ", ".join(f"{kib / 1024:.1f} MiB" for kib in worker.children.values()) or "none"
    return (f"worker pid {worker.pid}: resident {worker.resident_kib / 1024:.1f} MiB "
            f"(peak {worker.peak_resident_kib / 1024:.1f}); its children: {children}")


def sporadic_socket_dir(tmp: str) -> str:
    return os.path.join(tmp, "sockets-sporadic")


def scenarios(args) -> list[tuple[str, str, bool]]:
    """(label, mode, ipMasq)"""
    out = [("VERSION", "version", False)]
    for masq in (False, True):
        out.append((f"{args.pods} pods sequential, ipMasq {str(masq).lower()}", "sequential", masq))
        out.append((f"{args.parallel_pods} pods, {args.workers} parallel, ipMasq {str(masq).lower()}", "parallel", masq))
    if args.sporadic_pods:
        out.append((f"{args.sporadic_pods} pods now and then ({SPORADIC_PAUSE_SECONDS:g} s apart), ipMasq false",
                    "sporadic", False))
    return out


def measure(args, tmp: str, boxes: dict, pods: dict, sockets: str, ours_bin: str, round_no: int) -> list[tuple[str, dict]]:
    plugin = {"go": os.path.join(GO_DIR, "bridge"), "ours": os.path.join(ours_bin, "bridge")}
    cni_path = {"go": GO_DIR, "ours": ours_bin}
    rows = []
    base = {"workers": args.workers, "runs": args.version_runs}
    for number, (label, mode, masq) in enumerate(scenarios(args)):
        order = IMPLEMENTATIONS if (number + round_no) % 2 == 0 else IMPLEMENTATIONS[::-1]
        results = {}
        for impl in order:
            count = {"sequential": args.pods, "sporadic": args.sporadic_pods}.get(mode, args.parallel_pods)
            spec = dict(base, mode=mode, plugin=plugin[impl], cni_path=cni_path[impl],
                        config=write_config(tmp, f"{impl}-{round_no}-{number}", masq), pods=pods[impl][:count],
                        container_prefix=f"bench{round_no}-{number}-")
            if mode == "sporadic":
                resting = sporadic_socket_dir(tmp)
                spec.update(pause=SPORADIC_PAUSE_SECONDS, worker_socket=worker_socket(resting, args.python) if impl == "ours" else "",
                            extra_env={"CNI_RKT_WORKER_SOCKET_DIR": resting, "CNI_RKT_WORKER_IDLE": str(SPORADIC_IDLE_SECONDS)})
            if impl == "ours" and number == 0 and round_no == 0:
                warm = dict(spec, mode="warm-up", worker_socket=worker_socket(sockets, args.python),
                            config=write_config(tmp, "warm-up", False))
                results["first"] = {"ours": run_in_sandbox(boxes[impl], warm)}
            results.setdefault("run", {})[impl] = run_in_sandbox(boxes[impl], spec)
            if mode == "sporadic" and impl == "ours":
                time.sleep(SPORADIC_PAUSE_SECONDS)
                results["resting"] = worker_memory(resting)
        rows.append((label, results))
    return rows


def pooled(runs: list[dict]) -> dict:
    """The runs of one scenario and implementation in every round, as one run."""
    verbs = runs[0]["samples"]
    return {
        "samples": {verb: [s for run in runs for s in run["samples"][verb]] for verb in verbs},
        "wall": {verb: sum(run["wall"][verb] for run in runs) for verb in runs[0]["wall"]},
        "memory": {verb: max(run["memory"][verb] for run in runs) for verb in runs[0]["memory"]},
    }


def round_ratios(runs: dict, verb: str) -> str:
    """Each round's ratio of medians: how far one round's figure can be trusted."""
    ratios = [summarize(ours, verb)["median"] / summarize(go, verb)["median"] for go, ours in zip(runs["go"], runs["ours"])]
    return f"{min(ratios):.2f}-{max(ratios):.2f}x" if len(ratios) > 1 else ""


def print_table(rounds: list[list[tuple[str, dict]]]) -> None:
    print("| scenario | verb | Go median | ours median | ratio | ratio by round | Go p95 | ours p95 | Go /s "
          "| ours /s | Go peak MiB | ours peak MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    failures = []
    for number, (label, results) in enumerate(rounds[0]):
        if "first" in results:
            first = results["first"]["ours"]["samples"]["first"][0]
            print(f"| first exec, no worker yet: in-process | DEL | | {first['ms']:.1f} ms | | | | | | | "
                  f"| {first['maxrss_kib'] / 1024:.1f} |")
        runs = {impl: [rows[number][1]["run"][impl] for rows in rounds] for impl in IMPLEMENTATIONS}
        run = {impl: pooled(runs[impl]) for impl in IMPLEMENTATIONS}
        for verb in run["go"]["samples"]:
            go, ours = summarize(run["go"], verb), summarize(run["ours"], verb)
            failures += [(label, verb, "go", f) for f in go["failures"][:2]]
            failures += [(label, verb, "ours", f) for f in ours["failures"][:2]]
            print(f"| {label} | {verb} | {go['median']:.1f} ms | {ours['median']:.1f} ms "
                  f"| {ours['median'] / go['median']:.2f}x | {round_ratios(runs, verb)} | {go['p95']:.1f} "
                  f"| {ours['p95']:.1f} | {go['per_s']:.0f} | {ours['per_s']:.0f} | {go['peak']} | {ours['peak']} |")
    for label, verb, impl, failure in failures:
        print(f"FAILED {impl} {verb} in {label}: {failure}", file=sys.stderr)


def machine() -> str:
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    go = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"],
                        capture_output=True, text=True, check=False).stdout or "?"
    return (f"{os.cpu_count()} CPU ({model}), Linux {platform.release()}, Python {platform.python_version()}, "
            f"containernetworking-plugins {go}")


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=30, help="pods in the sequential scenarios")
    parser.add_argument("--parallel-pods", type=int, default=100, help="pods in the parallel scenarios")
    parser.add_argument("--workers", type=int, default=4, help="parallel execs in the parallel scenarios")
    parser.add_argument("--version-runs", type=int, default=30, help="VERSION execs per implementation")
    parser.add_argument("--sporadic-pods", type=int, default=3,
                        help=f"pods in the sporadic scenario, each verb {SPORADIC_PAUSE_SECONDS:g} s apart (0: skip it)")
    parser.add_argument("--python", default=sys.executable, help="interpreter our launchers name (default: this one)")
    parser.add_argument("--rounds", type=_at_least_one, default=1,
                        help="repeat every scenario this many times; the table pools the rounds' samples")
    args = parser.parse_args()
    if os.geteuid() != 0 or not os.path.exists(os.path.join(GO_DIR, "bridge")):
        print("needs root and Debian's containernetworking-plugins in /usr/lib/cni", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cni-rkt-bench-") as tmp:
        sockets = os.path.join(tmp, "sockets")
        ours_bin = os.path.join(tmp, "bin")
        install_launchers(ours_bin, args.python, worker_socket_dir=sockets)
        boxes: dict[str, Sandbox] = {}
        try:
            for impl in IMPLEMENTATIONS:
                boxes[impl] = Sandbox()
            count = max(args.pods, args.parallel_pods)
            pods = {impl: [boxes[impl].pod(str(i)) for i in range(count)] for impl in IMPLEMENTATIONS}
            rounds = [measure(args, tmp, boxes, pods, sockets, ours_bin, r) for r in range(args.rounds)]
            memory = worker_memory(sockets)
        finally:
            end_background_workers(sockets)
            end_background_workers(sporadic_socket_dir(tmp))
            for box in boxes.values():
                box.close()
    print(f"machine: {machine()}; our launchers on {args.python}")
    print(f"ours: {memory}")
    resting = [results["resting"] for _label, results in rounds[-1] if "resting" in results]
    if resting:
        print(f"ours, resting in the sporadic scenario: {resting[0]}")
    print_table(rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
