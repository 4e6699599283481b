"""Timed plugin execs, run inside a sandbox host netns by benchmarks/pod_setup.py.

`python benchmarks/execs.py SPEC_JSON` is what pod_setup.py runs under `ip netns exec`, so
that each plugin exec is timed alone (exec to exit), without a wrapper per call. It prints
one JSON object: the samples of every exec (milliseconds, peak RSS of that process in KiB,
exit code) per verb, and the wall time of each parallel phase.

Peak memory comes from separate execs under GNU time: a process forked from this (large)
Python process inherits its resident size as the floor of its own ru_maxrss, so the timed
execs' rusage would report the benchmark's size, not the plugin's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Sample:
    ms: float
    maxrss_kib: int
    code: int
    stdout: bytes
    stderr: bytes

    def public(self) -> dict:
        failure = "" if self.code == 0 else (self.stdout or self.stderr).decode(errors="replace")[:300]
        return {"ms": self.ms, "maxrss_kib": self.maxrss_kib, "code": self.code, "failure": failure}


def timed_exec(executable: str, env: dict[str, str], stdin: bytes) -> Sample:
    """Exec, feed stdin, read the output; wait4 gives this process's own peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [executable], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdin.write(stdin)
    proc.stdin.close()
    stdout = proc.stdout.read()  # plugins write a few KiB at most: no pipe can fill up
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter() - start) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    return Sample(elapsed, usage.ru_maxrss, proc.returncode, stdout, stderr)


def peak_memory_kib(executable: str, env: dict[str, str], stdin: bytes) -> Sample:
    """Exec through /usr/bin/time (a small C process), which reports the plugin's own peak RSS."""
    with tempfile.NamedTemporaryFile("r") as report:
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, executable],
                              input=stdin, env=env, capture_output=True, check=False)
        lines = report.read().split()
    return Sample(0.0, int(lines[-1]) if lines else 0, proc.returncode, proc.stdout, proc.stderr)


def plugin_env(spec: dict, command: str, container: str = "", netns: str = "") -> dict[str, str]:
    env = {"PATH": PATH, "CNI_COMMAND": command, "CNI_PATH": spec["cni_path"], **spec.get("extra_env", {})}
    if command != "VERSION":
        env.update(CNI_CONTAINERID=container, CNI_NETNS=netns, CNI_IFNAME="eth0")
    return env


def with_prev_result(config: dict, add_stdout: bytes) -> bytes:
    """CHECK and DEL get the ADD result as prevResult, as libcni passes it."""
    try:
        return json.dumps(dict(config, prevResult=json.loads(add_stdout))).encode()
    except ValueError:
        return json.dumps(config).encode()


def pod_verbs(spec: dict, config: dict, index: int, netns: str) -> dict[str, Sample]:
    """ADD one pod (the caller runs CHECK and DEL later)."""
    container = f"{spec['container_prefix']}{index}"
    return {"ADD": timed_exec(spec["plugin"], plugin_env(spec, "ADD", container, netns), json.dumps(config).encode())}


def follow_up(spec: dict, config: dict, verb: str, index: int, netns: str, add: Sample) -> Sample:
    container = f"{spec['container_prefix']}{index}"
    return timed_exec(spec["plugin"], plugin_env(spec, verb, container, netns), with_prev_result(config, add.stdout))


def run_sequential(spec: dict, config: dict) -> dict:
    pods = list(enumerate(spec["pods"]))
    adds = {i: pod_verbs(spec, config, i, netns)["ADD"] for i, netns in pods}
    checks = [follow_up(spec, config, "CHECK", i, netns, adds[i]) for i, netns in pods]
    dels = [follow_up(spec, config, "DEL", i, netns, adds[i]) for i, netns in pods]
    return {"ADD": list(adds.values()), "CHECK": checks, "DEL": dels, "memory": memory_pass(spec, config)}


def memory_pass(spec: dict, config: dict, pods: int = 3) -> dict[str, int]:
    """Peak RSS per verb over a few more pods, each exec under /usr/bin/time."""
    peaks = {"ADD": 0, "CHECK": 0, "DEL": 0}
    for i, netns in list(enumerate(spec["pods"]))[:pods]:
        env = plugin_env(spec, "ADD", f"{spec['container_prefix']}mem{i}", netns)
        add = peak_memory_kib(spec["plugin"], env, json.dumps(config).encode())
        for verb in ("ADD", "CHECK", "DEL"):
            sample = add if verb == "ADD" else peak_memory_kib(
                spec["plugin"], dict(env, CNI_COMMAND=verb), with_prev_result(config, add.stdout))
            peaks[verb] = max(peaks[verb], sample.maxrss_kib)
    return peaks


def run_parallel(spec: dict, config: dict) -> dict:
    pods = list(enumerate(spec["pods"]))
    with ThreadPoolExecutor(spec["workers"]) as pool:
        start = time.perf_counter()
        adds = list(pool.map(lambda p: pod_verbs(spec, config, *p)["ADD"], pods))
        add_wall = time.perf_counter() - start
        start = time.perf_counter()
        dels = list(pool.map(lambda p: follow_up(spec, config, "DEL", p[0], p[1], adds[p[0]]), pods))
        del_wall = time.perf_counter() - start
    return {"ADD": adds, "DEL": dels, "wall": {"ADD": add_wall, "DEL": del_wall}}


def run_sporadic(spec: dict, config: dict) -> dict:
    """A pod now and then: each ADD, and each DEL, after `pause` seconds of quiet (ours: long
    enough for the worker to rest, letting its children go; short of its exit)."""
    wait_for_worker(spec, config)
    pods = list(enumerate(spec["pods"]))
    adds, dels = [], []
    for i, netns in pods:
        time.sleep(spec["pause"])
        adds.append(pod_verbs(spec, config, i, netns)["ADD"])
    for i, netns in pods:
        time.sleep(spec["pause"])
        dels.append(follow_up(spec, config, "DEL", i, netns, adds[i]))
    return {"ADD": adds, "DEL": dels}


def wait_for_worker(spec: dict, config: dict) -> Sample:
    """One DEL of a container that never existed; for ours it runs in-process and starts the
    worker, which this waits for (Go has none to wait for)."""
    sample = timed_exec(spec["plugin"], plugin_env(spec, "DEL", "warm-up", spec["pods"][0]), json.dumps(config).encode())
    deadline = time.monotonic() + 60
    while spec.get("worker_socket") and not os.path.exists(spec["worker_socket"]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return sample


def run_version(spec: dict) -> dict:
    env = plugin_env(spec, "VERSION")
    samples = [timed_exec(spec["plugin"], env, b"") for _ in range(spec["runs"])]
    return {"VERSION": samples, "memory": {"VERSION": peak_memory_kib(spec["plugin"], env, b"").maxrss_kib}}


def warm_up(spec: dict, config: dict) -> dict:
    """The first exec, in-process (it starts our worker), and its peak memory."""
    sample = wait_for_worker(spec, config)
    env = plugin_env(spec, "DEL", "warm-up", spec["pods"][0])
    sample.maxrss_kib = peak_memory_kib(spec["plugin"], dict(env, CNI_RKT_WORKER="0"), json.dumps(config).encode()).maxrss_kib
    return {"first": [sample]}


def main(spec: dict) -> dict:
    if spec["mode"] == "version":
        samples = run_version(spec)
    else:
        with open(spec["config"]) as f:
            config = json.load(f)
        if spec["mode"] == "warm-up":
            samples = warm_up(spec, config)
        elif spec["mode"] == "sequential":
            samples = run_sequential(spec, config)
        elif spec["mode"] == "sporadic":
            samples = run_sporadic(spec, config)
        else:
            samples = run_parallel(spec, config)
    wall = samples.pop("wall", {})
    memory = samples.pop("memory", {})
    return {"samples": {verb: [s.public() for s in runs] for verb, runs in samples.items()}, "wall": wall,
            "memory": memory}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
