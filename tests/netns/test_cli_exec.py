"""`cni-rkt exec` end to end: the command runs inside a sandbox host netns, execs our installed
plugins on a bridge conflist, and ADD/CHECK/DEL leave the sandbox as they found it."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import pytest

from bridge_harness import Bridge, ip_json, pod_name
from cni_rkt.cli.exec import default_container_id
from cni_rkt.cli.main import main
from plugin_calls import REPO_ROOT

NETWORK = "clinet"


@pytest.fixture
def setup(sandbox, plugin_dir, data_dir, tmp_path):
    """A conf dir holding one bridge conflist, a cache dir, and the harness that snapshots the sandbox.

    The nat table exists beforehand: an emptied table stays after DEL, as with the reference."""
    sandbox.sh("iptables -t nat -A POSTROUTING -j RETURN && iptables -t nat -D POSTROUTING -j RETURN")
    config = {"cniVersion": "1.0.0", "name": NETWORK, "type": "bridge", "bridge": "cnrcli0", "isGateway": True,
              "ipMasq": True, "ipam": {"type": "host-local", "subnet": "10.66.0.0/24", "dataDir": data_dir}}
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    conflist = {"cniVersion": config["cniVersion"], "name": NETWORK,
                "plugins": [{k: v for k, v in config.items() if k not in ("cniVersion", "name")}]}
    (conf_dir / "10-clinet.conflist").write_text(json.dumps(conflist))
    cache_dir = str(tmp_path / "cache")

    def cni_rkt_exec(verb: str, netns: str = "", *extra: str, in_process: bool = True):
        argv = [sys.executable, "-m", "cni_rkt.cli.main", "exec", verb, NETWORK, *([netns] if netns else []),
                "--conf-dir", str(conf_dir), "--cni-path", plugin_dir, "--cache-dir", cache_dir, *extra]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "PYTHONPATH": REPO_ROOT,
               "CNI_RKT_INPROCESS_DELEGATE": "1" if in_process else "0"}
        return sandbox.run(argv, env=env)

    return Bridge(sandbox, plugin_dir, data_dir, config), cni_rkt_exec, cache_dir


def ok(run):
    assert run.returncode == 0, (run.stdout, run.stderr)
    return run


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "exec"])
def test_add_check_del_leaves_the_sandbox_as_it_was(setup, sandbox, data_dir, capsys, in_process):
    bridge, base_exec, cache_dir = setup
    cni_rkt_exec = functools.partial(base_exec, in_process=in_process)
    pod = sandbox.pod()
    before = bridge.state()
    result = ok(cni_rkt_exec("add", pod)).json()
    address = result["ips"][0]["address"]
    assert address.startswith("10.66.0.")
    assert [a["local"] for a in ip_json(sandbox, "-4 addr show eth0", pod_name(pod))[0]["addr_info"]] == [
        address.split("/")[0]]
    assert os.listdir(cache_dir) == [f"{NETWORK}-{default_container_id(pod)}-eth0"]
    # The operator's view of the same reservation.
    assert main(["ipam", "list", "--data-dir", data_dir, NETWORK, "--json"]) == 0
    [held] = json.loads(capsys.readouterr().out)["networks"][0]["reservations"]
    assert (held["address"], held["containerID"], held["ifname"]) == (address.split("/")[0],
                                                                      default_container_id(pod), "eth0")
    ok(cni_rkt_exec("check", pod))
    ok(cni_rkt_exec("del", pod))
    assert os.listdir(cache_dir) == []
    assert bridge.state_without_bridge() == before


def test_check_reports_the_plugins_error_when_the_pod_lost_its_address(setup, sandbox):
    bridge, cni_rkt_exec, _ = setup
    pod = sandbox.pod()
    before = bridge.state()
    address = ok(cni_rkt_exec("add", pod)).json()["ips"][0]["address"]
    sandbox.sh(f"ip addr del {address} dev eth0", netns=pod_name(pod))
    failed = cni_rkt_exec("check", pod)
    assert failed.returncode == 1 and json.loads(failed.stdout)["code"] > 0
    assert b'plugin type="bridge" failed (check)' in failed.stderr
    ok(cni_rkt_exec("del", pod))
    assert bridge.state_without_bridge() == before


def test_del_after_the_pod_netns_is_gone_still_removes_everything(setup, sandbox):
    """As after a reboot: the netns path no longer exists; DEL still drops rules, address and cache."""
    bridge, cni_rkt_exec, cache_dir = setup
    pod = sandbox.pod()
    before = bridge.state()
    ok(cni_rkt_exec("add", pod, "--container-id", "gonepod"))
    sandbox.remove_pod(pod)
    ok(cni_rkt_exec("del", pod, "--container-id", "gonepod"))
    assert os.listdir(cache_dir) == []
    after = bridge.state_without_bridge()
    before.pop(pod_name(pod))
    assert after == before


def test_gc_deletes_attachments_not_in_the_valid_set(setup, sandbox, tmp_path):
    """At 1.1.0: DEL for every cached attachment not listed, then GC to the plugins; the valid one stays."""
    bridge, cni_rkt_exec, cache_dir = setup
    conflist_path = tmp_path / "net.d" / "10-clinet.conflist"
    conflist_path.write_text(json.dumps(dict(json.loads(conflist_path.read_text()), cniVersion="1.1.0")))
    kept_pod, stale_pod = sandbox.pod(), sandbox.pod()
    before = bridge.state()
    kept = ok(cni_rkt_exec("add", kept_pod, "--container-id", "kept")).json()["ips"][0]["address"]
    ok(cni_rkt_exec("add", stale_pod, "--container-id", "stale"))
    ok(cni_rkt_exec("gc", "", "--valid", "kept:eth0"))
    assert bridge.reservations() == [kept.split("/")[0]]
    assert os.listdir(cache_dir) == [f"{NETWORK}-kept-eth0"]
    assert [link["ifname"] for link in ip_json(sandbox, "link show", pod_name(stale_pod))] == ["lo"]
    ok(cni_rkt_exec("del", kept_pod, "--container-id", "kept"))
    assert bridge.state_without_bridge() == before


def test_the_readmes_rkt_example_adds_and_deletes_with_the_shipped_config(sandbox, plugin_dir, data_dir, tmp_path):
    """`exec add rkt.kubernetes.io NETNS --runtime rkt`: the file's bytes (dataDir added, no cniVersion) and a
    0.1.0 result, as rkt gets it; DEL leaves the sandbox as it was but for the bridge."""
    sandbox.sh("iptables -t nat -A POSTROUTING -j RETURN && iptables -t nat -D POSTROUTING -j RETURN")
    example = json.loads((Path(REPO_ROOT) / "examples/rkt/net.d/10-rkt.kubernetes.io.conf").read_text())
    config = dict(example, ipam=dict(example["ipam"], dataDir=data_dir))
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    (conf_dir / "10-rkt.kubernetes.io.conf").write_text(json.dumps(config))
    bridge = Bridge(sandbox, plugin_dir, data_dir, config)
    pod = sandbox.pod()
    before = bridge.state()

    def cni_rkt_exec(verb):
        argv = [sys.executable, "-m", "cni_rkt.cli.main", "exec", verb, "rkt.kubernetes.io", pod, "--runtime", "rkt",
                "--conf-dir", str(conf_dir), "--cni-path", plugin_dir, "--cache-dir", str(tmp_path / "cache")]
        return ok(sandbox.run(argv, env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                                         "PYTHONPATH": REPO_ROOT}))

    result = cni_rkt_exec("add").json()
    assert result["cniVersion"] == "0.1.0" and result["ip4"]["ip"].startswith("10.22.")
    cni_rkt_exec("del")
    assert bridge.state_without_bridge() == before
