"""Running a CNI plugin (ours or the reference Go one) or a cni_rkt function inside a Sandbox.

Everything runs through `ip netns exec <sandbox host>`, never in the machine's namespace.
"""

from __future__ import annotations

import json
import os
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
