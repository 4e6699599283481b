"""A killed ADD leaves no ipMasq rule behind, even when its firewall program was still waiting.

The usual reason a runtime times out an ADD with ipMasq is iptables-restore waiting for a
busy xtables lock (or a slow nft). The runtime then SIGKILLs the plugin (in-process) or, with the
worker, a child may be killed; either way DEL runs soon after and finds no rule yet. The
firewall program must not live on and make the rules once DEL is done. Here the first
program that writes rules waits for a gate file instead of a lock: the test opens it once
DEL has run, and the rules must not appear. With the worker, a killed launcher leaves its
child going on with the ADD: that ADD must find its veth gone (DEL took it) and undo itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time

import pytest
from plugin_calls import cni_env
from processes import is_running, netns_of, parent_of
from worker_process import running_worker

from cni_rkt.launcher import install_launchers
from cni_rkt.net.firewall import find_tool

SYSTEM_DIRS = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WAIT_SECONDS = 30.0


# The program that makes the rules, and the arguments that tell its writing run from a read.
WRITERS = {"iptables": ("iptables-restore", "*"), "nftables": ("nft", "*-f*")}


def config(data_dir: str, backend: str) -> bytes:
    return json.dumps({"cniVersion": "1.0.0", "name": "killnet", "type": "bridge", "bridge": "killbr0",
                       "isGateway": True, "ipMasq": True, "ipMasqBackend": backend,
                       "ipam": {"type": "host-local", "subnet": "10.49.0.0/24", "dataDir": data_dir}}).encode()


def gate_first_write(directory, backend: str) -> None:
    """Put in `directory` a stand-in for the backend's program whose first writing run says its
    PID in `waiting`, then waits for a file `gate` (as for a busy xtables lock)."""
    tool, writing = WRITERS[backend]
    script = (f'#!/bin/sh\ncase "$*" in {writing})\n'
              f"    if mkdir {directory}/first 2>/dev/null; then\n"
              f"        echo $$ > {directory}/waiting.new && mv {directory}/waiting.new {directory}/waiting\n"
              f"        while [ ! -e {directory}/gate ]; do sleep 0.01; done\n    fi;;\nesac\n"
              f'exec {find_tool(tool)} "$@"\n')
    (directory / tool).write_text(script)
    (directory / tool).chmod(0o755)


def wait_for(condition, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)
    return value


@pytest.mark.parametrize("backend", sorted(WRITERS))
@pytest.mark.parametrize("killed", ["launcher in-process", "worker child", "launcher of the worker"])
def test_a_killed_add_whose_firewall_program_was_waiting_leaves_no_rule(sandbox, tmp_path, killed, backend):
    sockets, bin_dir, data_dir = str(tmp_path / "sockets"), str(tmp_path / "bin"), str(tmp_path / "data")
    gated_path = tmp_path / "gated"
    gated_path.mkdir()
    gate_first_write(gated_path, backend)
    install_launchers(bin_dir, plugins=("bridge", "host-local"), worker_socket_dir=sockets)
    in_process = {"CNI_RKT_WORKER": "0"} if killed.endswith("in-process") else {}
    pod = sandbox.pod()

    def run(command: str, cid: str, path: str = SYSTEM_DIRS) -> subprocess.Popen:
        with tempfile.TemporaryFile() as stdin:
            stdin.write(config(data_dir, backend))
            stdin.seek(0)
            env = cni_env(command, cid, pod, cni_path=bin_dir, PATH=path, **in_process)
            return subprocess.Popen(["ip", "netns", "exec", sandbox.host, os.path.join(bin_dir, "bridge")],
                                    env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(proc: subprocess.Popen) -> tuple[int, bytes]:
        out, _err = proc.communicate(timeout=60)
        return proc.returncode, out

    with running_worker(sockets) as (worker, _socket):
        for command in ("ADD", "DEL"):  # the bridge, its address and the nat table stay after DEL
            assert finish(run(command, "warm"))[0] == 0
        before = sandbox.snapshot((data_dir,))
        adding = run("ADD", "doomed", path=f"{gated_path}:{SYSTEM_DIRS}")
        try:
            waiting = int(wait_for(lambda: (gated_path / "waiting").exists() and (gated_path / "waiting").read_text(),
                                   "iptables-restore to start"))
            doing_the_add = parent_of(waiting)
            if in_process:
                assert doing_the_add == adding.pid
            else:
                assert parent_of(doing_the_add) == worker.pid  # the worker's child: ours to kill
            os.kill(adding.pid if killed.startswith("launcher") else doing_the_add, signal.SIGKILL)
            if killed != "launcher of the worker":  # (that child holds its caller's stderr until it is done)
                code, out = finish(adding)
        finally:
            if adding.poll() is None:  # the test failed before its kill: end what it started
                (gated_path / "gate").touch()
                finish(adding)
        assert finish(run("DEL", "doomed"))[0] == 0  # the runtime's DEL, before the program went on
        (gated_path / "gate").touch()
        wait_for(lambda: not is_running(waiting), "the held iptables-restore to end")
        if killed == "launcher of the worker":  # the child went on with the ADD: until it is done
            code, out = finish(adding)
            wait_for(lambda: not is_running(doing_the_add) or netns_of(doing_the_add) == netns_of(worker.pid),
                     "the worker's child to finish the ADD")
        if killed.startswith("launcher"):
            assert code == -signal.SIGKILL, out
        else:  # the launcher, whose child died, answers with the spec's error
            assert code > 0 and "msg" in json.loads(out), out
        rules = [line for line in sandbox.sh("iptables-save -t nat").splitlines() if "CNI-" in line]
        assert rules == []
        assert "doomed" not in sandbox.sh("nft list ruleset")
        after = sandbox.snapshot((data_dir,))
        assert json.dumps(after).replace(" linkdown", "") == json.dumps(before).replace(" linkdown", "")
