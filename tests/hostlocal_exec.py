"""Exec host-local (ours through its launcher, or the Go binary) the way a runtime does.

host-local touches no network, but it is a plugin: like every plugin in the tests it runs
inside a sandbox netns (`ip netns exec`, which execs it: the PID is the plugin's). The
`host_local_sandbox` fixture (tests/conftest.py) sets SANDBOX_NETNS for a test session.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

GO_HOST_LOCAL = "/usr/lib/cni/host-local"
SANDBOX_NETNS: str | None = None  # set by the host_local_sandbox fixture


@dataclass(frozen=True)
class Reply:
    stdout: bytes
    returncode: int

    def json(self) -> dict:
        return json.loads(self.stdout)


def ipam_config(data_dir: str, version: str = "1.0.0", name: str = "net1", **ipam) -> dict:
    ipam.setdefault("subnet", "10.1.0.0/24") if "ranges" not in ipam else None
    return {"cniVersion": version, "name": name, "type": "host-local",
            "ipam": {"type": "host-local", "dataDir": data_dir, **ipam}}


def plugin_env(command: str, container_id: str, ifname: str = "eth0", cni_args: str = "") -> dict[str, str]:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": "/var/run/netns/none",
           "CNI_IFNAME": ifname, "CNI_PATH": "/nonexistent", "PATH": "/usr/bin:/bin"}
    if cni_args:
        env["CNI_ARGS"] = cni_args
    return env


def start(executable: str, command: str, config: dict, container_id: str, in_process: bool = False,
          **kw) -> subprocess.Popen:
    """`in_process`: our launcher does the work itself, not its worker (so killing it stops it)."""
    env = plugin_env(command, container_id, **kw)
    if in_process:
        env["CNI_RKT_WORKER"] = "0"
    if SANDBOX_NETNS is None:
        raise RuntimeError("host-local runs only inside a sandbox netns: use the host_local_sandbox fixture")
    proc = subprocess.Popen(["ip", "netns", "exec", SANDBOX_NETNS, executable], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        proc.stdin.write(json.dumps(config).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # it answered before reading its config (an environment error): the reply says so
    return proc


def finish(proc: subprocess.Popen, timeout: float = 120) -> Reply:
    out = proc.stdout.read()
    proc.stdout.close()
    return Reply(out, proc.wait(timeout=timeout))


def call(executable: str, command: str, config: dict, container_id: str, **kw) -> Reply:
    return finish(start(executable, command, config, container_id, **kw))


def address_files(directory: str) -> dict[str, bytes]:
    """Every file of a network directory except the lock and round-robin hints."""
    out = {}
    for name in sorted(os.listdir(directory)):
        if name != "lock" and not name.startswith("last_reserved_ip."):
            with open(os.path.join(directory, name), "rb") as f:
                out[name] = f.read()
    return out
