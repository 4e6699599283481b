"""`cni-rkt demo`: watch two pods get networked by our bridge and host-local, in a sandbox.

In a throwaway "host" network namespace (never the machine's own) it creates two pod
namespaces, installs our plugins into a temporary directory, ADDs both pods to the rkt
guide's `rkt.kubernetes.io` network, pings pod to pod and pod to gateway, runs CHECK,
DELs both and shows that nothing is left. Everything is removed at the end, also after a
failure or Ctrl-C. Needs root (it creates network namespaces).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import cni_rkt
from cni_rkt.cli.demo_sandbox import DemoSandbox, changes
from cni_rkt.cli.main import INTERRUPTED_STATUS

EXAMPLE = Path("examples/rkt/net.d/10-rkt.kubernetes.io.conf")
DEMO_VERSION = "1.0.0"  # set in memory: CHECK needs 0.4.0 or later; rkt sends the file without one
PODS = 2
_ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


EXIT_STATUS = ("exit status: 0 every step passed; 1 a step failed; 2 bad arguments (a --config it cannot use) "
               "or not root; 130 interrupted (it cleans up first)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path,
                        help=f"bridge network config to use (default: the checkout's {EXAMPLE})")


def execute(args: argparse.Namespace) -> int:
    if args.config is None:
        args.config = Path(cni_rkt.__file__).resolve().parent.parent / EXAMPLE
        if not args.config.exists():
            print(f"cni-rkt demo: no {args.config}: the default config comes with a checkout of cni-rkt, not "
                  "with an installed package; give --config FILE (a bridge config with host-local IPAM)",
                  file=sys.stderr)
            return 2
    try:
        config = json.loads(args.config.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"cni-rkt demo: cannot read the network config {args.config}: {exc}", file=sys.stderr)
        return 2
    problem = unusable(config)
    if problem:
        print(f"cni-rkt demo: --config {args.config}: {problem}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("cni-rkt demo: needs root, to create network namespaces (it never changes the machine's own)",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    # A shell starts background jobs with SIGINT ignored, which Python inherits; Ctrl-C
    # (or kill -INT) must still stop the demo and clean up.
    signal.signal(signal.SIGINT, _interrupt)
    demo = Demo(config, args.config)
    try:
        return demo.run()
    except KeyboardInterrupt:
        print("\ninterrupted")
        return INTERRUPTED_STATUS
    finally:
        demo.clean_up()


def unusable(config) -> str:
    """Why the demo cannot run `config` (a bridge plugin config with host-local IPAM), or ""."""
    if not isinstance(config, dict):
        return "want a JSON object, a bridge plugin config (not a list or a .conflist)"
    ipam = config.get("ipam")
    wrong = [("type", config.get("type"), config.get("type") != "bridge", 'want "bridge"'),
             ("name", config.get("name"), not isinstance(config.get("name"), str), "want a string"),
             ("bridge", config.get("bridge"), not isinstance(config.get("bridge", ""), str), "want a string"),
             ("ipam", ipam, not isinstance(ipam, dict), "want an object")]
    if isinstance(ipam, dict):
        wrong.append(("ipam.type", ipam.get("type"), ipam.get("type") != "host-local", 'want "host-local"'))
    return "; ".join(f'"{key}": {value!r}, {want}' for key, value, bad, want in wrong if bad)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


class Demo:
    def __init__(self, config: dict, config_path: Path) -> None:
        self.config_path = config_path
        self.scratch = tempfile.mkdtemp(prefix="cni-rkt-demo-")
        self.plugin_dir = os.path.join(self.scratch, "bin")
        self.data_dir = os.path.join(self.scratch, "ipam")
        self.worker_dir = os.path.join(self.scratch, "workers")  # the demo's own, ended at clean-up
        self.config = dict(config, cniVersion=DEMO_VERSION, ipam=dict(config.get("ipam", {}), dataDir=self.data_dir))
        self.sandbox = DemoSandbox()
        self.pods: dict[str, str] = {}  # container id -> netns path
        self.results: dict[str, dict] = {}
        self.ok = True

    def run(self) -> int:
        from cni_rkt.launcher import install_launchers

        bridge = self.config.get("bridge", "cni0")
        print(f"cni-rkt demo: {PODS} pods on the {self.config['name']!r} network, with cni-rkt's bridge and host-local")
        print(f"  config   {self.config_path} (bridge {bridge}, {self.config['ipam'].get('subnet', '?')},"
              f" ipMasq {self.config.get('ipMasq', False)};"
              f" cniVersion {DEMO_VERSION} and a temporary dataDir set in memory)")
        install_launchers(self.plugin_dir, worker_socket_dir=self.worker_dir)
        self.sandbox.create_netns("host")
        print(f"  sandbox  netns {self.sandbox.host} (plugins run here), plugins in {self.plugin_dir}")
        before = self.sandbox.snapshot(self.data_dir)
        for i in range(PODS):
            self.pods[f"{self.sandbox.prefix}-pod{i}"] = self.sandbox.create_netns(f"pod{i}")

        self.step(1, "ADD", self.add_all)
        self.show_added(before)
        if self.ok:
            self.step(2, "ping (inside the sandbox only)", self.ping_all)
            self.step(3, "CHECK", self.check_all)
        self.step(4, "DEL", self.delete_all)
        self.step(5, "what is left", lambda: self.show_left(before, bridge))
        print("\nresult: " + ("all steps passed" if self.ok else "some steps FAILED"))
        return 0 if self.ok else 1

    def step(self, number: int, title: str, action) -> None:
        print(f"\n[{number}/5] {title}", flush=True)
        action()

    def report(self, label: str, ok: bool, detail: str) -> None:
        self.ok &= ok
        print(f"  {label:<22} {'ok  ' if ok else 'FAIL'}  {detail}")

    def cni(self, command: str, container_id: str, config: dict) -> tuple[bool, dict, float]:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": self.pods[container_id],
               "CNI_IFNAME": "eth0", "CNI_PATH": self.plugin_dir, "PATH": _ENV_PATH}
        started = time.monotonic()
        proc = self.sandbox.run([os.path.join(self.plugin_dir, config["type"])], env=env,
                                stdin=json.dumps(config).encode())
        elapsed = (time.monotonic() - started) * 1000
        try:
            reply = json.loads(proc.stdout) if proc.stdout.strip() else {}
        except ValueError:
            reply = {"msg": proc.stdout.decode(errors="replace")}
        if proc.returncode != 0 and not reply.get("msg"):
            reply["msg"] = proc.stderr.decode(errors="replace").strip()
        return proc.returncode == 0, reply, elapsed

    def add_all(self) -> None:
        for cid in self.pods:
            ok, reply, ms = self.cni("ADD", cid, self.config)
            if ok:
                self.results[cid] = reply
                ip = reply["ips"][0]
                host_veth = reply["interfaces"][1]["name"] if len(reply.get("interfaces", [])) > 1 else "?"
                detail = f"eth0 {ip['address']}  gateway {ip.get('gateway', '-')}  host side {host_veth}  ({ms:.0f} ms)"
            else:
                detail = f"code {reply.get('code')}: {reply.get('msg')}"
            self.report(cid.removeprefix(self.sandbox.prefix + "-"), ok, detail)

    def address_of(self, cid: str) -> str:
        return self.results[cid]["ips"][0]["address"].split("/")[0]

    def ping_all(self) -> None:
        if len(self.results) < PODS:
            self.report("ping", False, "skipped: not every pod has an address")
            return
        first, second = list(self.results)
        gateway = self.results[first]["ips"][0].get("gateway")
        for source, target, label in ((first, self.address_of(second), "pod0 -> pod1"),
                                      (second, self.address_of(first), "pod1 -> pod0"),
                                      (first, gateway, "pod0 -> gateway")):
            proc = self.sandbox.run(["ping", "-c", "1", "-W", "2", target], netns=os.path.basename(self.pods[source]))
            self.report(label, proc.returncode == 0, target)

    def check_all(self) -> None:
        for cid, result in self.results.items():
            ok, reply, ms = self.cni("CHECK", cid, dict(self.config, prevResult=result))
            self.report(cid.removeprefix(self.sandbox.prefix + "-"), ok,
                        f"({ms:.0f} ms)" if ok else f"code {reply.get('code')}: {reply.get('msg')}")

    def delete_all(self) -> None:
        for cid in self.pods:
            config = dict(self.config, prevResult=self.results[cid]) if cid in self.results else self.config
            ok, reply, ms = self.cni("DEL", cid, config)
            self.report(cid.removeprefix(self.sandbox.prefix + "-"), ok,
                        f"({ms:.0f} ms)" if ok else f"code {reply.get('code')}: {reply.get('msg')}")

    def show_added(self, before: dict) -> None:
        added = changes(before, self.sandbox.snapshot(self.data_dir))
        counts = ", ".join(f"{kind} {len(items)}" for kind, items in added.items())
        print(f"  the sandbox host gained: {counts or 'nothing'}")

    def show_left(self, before: dict, bridge: str) -> None:
        left = changes(before, self.sandbox.snapshot(self.data_dir))
        by_design = {k: [x for x in v if bridge in x] for k, v in left.items()}
        unexpected = {k: [x for x in v if bridge not in x] for k, v in left.items()}
        unexpected = {k: v for k, v in unexpected.items() if v}
        if unexpected:
            for kind, items in unexpected.items():
                self.report(kind, False, "; ".join(items))
        else:
            self.report("host state", True, "no veth, no pod address, no IPAM reservation, no ipMasq rule left")
        kept = [x.removeprefix("+ ") for v in by_design.values() for x in v]
        if kept:
            print(f"  kept by design: {', '.join(kept)}")
            print("  (a bridge plugin never deletes its bridge, like the reference; it goes with the sandbox)")

    def clean_up(self) -> None:
        from cni_rkt.worker.control import stop_workers, worker_pids

        stop_workers(self.worker_dir)
        removed = self.sandbox.close()
        # A worker a launcher was still starting (between its forks) shows up only now,
        # and would make its socket dir again: look twice more.
        for _ in range(3):
            shutil.rmtree(self.scratch, ignore_errors=True)
            time.sleep(0.1)
            if not worker_pids(self.worker_dir) and not os.path.exists(self.scratch):
                break
            stop_workers(self.worker_dir)
        print(f"\ncleaned up: netns {', '.join(removed) or '-'}; {self.scratch}")
