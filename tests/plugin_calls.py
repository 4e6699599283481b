"""Running a CNI plugin (ours or the reference Go one) or a cni_rkt function inside a Sandbox.

Everything runs through `ip netns exec <sandbox host>`, never in the machine's namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sandbox import PluginRun, Sandbox

GO_PLUGIN_DIR = "/usr/lib/cni"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cni_env(command: str, container_id: str, netns: str, ifname: str = "eth0",
            cni_path: str = GO_PLUGIN_DIR, **extra: str) -> dict[str, str]:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": cni_path,
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    env.update(extra)
    return env


def run_plugin(sandbox: Sandbox, plugin_dir: str, plugin: str, command: str, config: dict,
               container_id: str, netns: str, ifname: str = "eth0", **extra: str) -> PluginRun:
    """Exec `plugin_dir/plugin` as a runtime would, with CNI_PATH = plugin_dir."""
    env = cni_env(command, container_id, netns, ifname, cni_path=plugin_dir, **extra)
    return sandbox.run([os.path.join(plugin_dir, plugin)], env=env, stdin=json.dumps(config).encode())


def call_in_sandbox(sandbox: Sandbox, module: str, function: str, *args, path: str = ""):
    """Call cni_rkt.<module>.<function>(*args) in the sandbox host netns (PATH `path` if given);
    return its JSON-able result, or raise AssertionError with the subprocess's stderr."""
    code = (
        "import json, sys\n"
        f"from cni_rkt.{module} import {function} as f\n"
        "result = f(*json.loads(sys.argv[1]))\n"
        "print(json.dumps(sorted(result) if isinstance(result, set) else result))\n"
    )
    env = {"PATH": path or os.environ.get("PATH", ""), "PYTHONPATH": REPO_ROOT}
    run = sandbox.run([sys.executable, "-c", code, json.dumps(args, default=sorted)], env=env)
    if run.returncode != 0:
        raise AssertionError(f"{module}.{function}{args} failed:\n{run.stderr.decode()}")
    return json.loads(run.stdout)


def nat_rules(sandbox: Sandbox, version: int = 4) -> list[str]:
    """The nat table's chains and rules as iptables-save prints them, without counters."""
    tool = "iptables-save" if version == 4 else "ip6tables-save"
    lines = sandbox.sh(f"{tool} -t nat").splitlines()
    return [line.split(" [")[0] for line in lines if line.startswith((":", "-A"))]


_SERVE_ONCE = """
import socket, sys
with socket.create_server(("0.0.0.0", int(sys.argv[1]))) as listener:
    listener.settimeout(20)
    print("listening", flush=True)
    conn, (peer, _) = listener.accept()
    conn.sendall(b"pod saw " + peer.encode())
    conn.close()
"""
_FETCH = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as conn:
    sys.stdout.buffer.write(conn.recv(100))
"""


def fetch_through_published_port(sandbox: Sandbox, pod: str, pod_port: int, address: str, port: int) -> bytes:
    """Serve once on `pod_port` in the pod, connect from the sandbox host to address:port
    (a port a portmap plugin published); what the pod's server sent: b"pod saw <peer>"."""
    server = subprocess.Popen(["ip", "netns", "exec", os.path.basename(pod), sys.executable, "-c", _SERVE_ONCE,
                               str(pod_port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert server.stdout.readline() == b"listening\n"
        fetched = sandbox.run([sys.executable, "-c", _FETCH, address, str(port)])
        assert fetched.returncode == 0, fetched.stderr
        return fetched.stdout
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
