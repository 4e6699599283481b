#!/usr/bin/env python3
"""How long `cni-rkt validate` takes as a whole process: one file, and the 88-file corpus.

Not a test (no timed assertions in tests). Reports the best and the median of N runs, since a
busy machine only ever adds time. Targets (issue 5): one file well under 150 ms, the corpus under 1 s.

    python benchmarks/validate_speed.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(REPO, "tests", "corpus", "cni-configs")
ONE_FILE = os.path.join(REPO, "examples", "rkt", "net.d", "10-rkt.kubernetes.io.conf")


def time_command(args: list[str], runs: int) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds) per run; CPU time (user + system of the child) is what a busy
    machine cannot inflate much, wall time is what a user waits."""
    env = dict(os.environ, PYTHONPATH=REPO)
    # An installed package has its bytecode compiled (pip does it); without the cache every run
    # would compile ~25 modules first, which is not what users wait for.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "cni_rkt.cli.main", "validate", "--no-config", *args]
    subprocess.run(command, capture_output=True, env=env)  # warm the bytecode cache
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env)
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def report(label: str, timings: tuple[list[float], list[float]], target: float) -> None:
    wall, cpu = timings
    verdict = "ok" if min(wall) < target else "OVER TARGET"
    print(f"{label:<34} wall best {min(wall) * 1000:6.1f} ms  median {statistics.median(wall) * 1000:6.1f} ms"
          f"   cpu median {statistics.median(cpu) * 1000:6.1f} ms   target {target * 1000:.0f} ms  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    corpus_files = sorted(os.path.join(CORPUS, n) for n in os.listdir(CORPUS) if n != "SOURCES.md")
    baseline = time_command(["--list-rules"], args.runs)
    report("interpreter + CLI (--list-rules)", baseline, 0.150)
    report("one file", time_command([ONE_FILE], args.runs), 0.150)
    report(f"corpus ({len(corpus_files)} files)", time_command(corpus_files, args.runs), 1.0)
    report("corpus as a directory", time_command([CORPUS], args.runs), 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
