"""ipMasq with the real iptables and nft, in a sandbox netns, and side by side with the Go bridge."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import needs_go_plugins
from plugin_calls import GO_PLUGIN_DIR, call_in_sandbox, nat_rules, run_plugin

NET, CID = "rkt.kubernetes.io", "abc123"
CHAIN = "CNI-450745af60a98a8fda10c6aa"  # made by Debian's Go bridge for (NET, CID)
SYSTEM_DIRS = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
COMMENT = '"name: \\"rkt.kubernetes.io\\" id: \\"abc123\\""'
BUILTIN_CHAINS = [":PREROUTING ACCEPT", ":INPUT ACCEPT", ":OUTPUT ACCEPT", ":POSTROUTING ACCEPT"]


def setup(sandbox, addresses, backend=None, cid=CID, ifname="eth0", network=NET, path=""):
    call_in_sandbox(sandbox, "net.masquerade", "setup_masquerade", network, cid, ifname, addresses, backend, path=path)


def remove(sandbox, addresses, cid=CID, ifname="eth0", path="", ip_masq=True):
    call_in_sandbox(sandbox, "net.masquerade", "remove_masquerade", NET, cid, ifname, addresses, ip_masq, path=path)


def problems(sandbox, addresses, backend=None):
    return call_in_sandbox(sandbox, "net.masquerade", "masquerade_problems", NET, CID, "eth0", addresses, backend)


def masq_checks(sandbox) -> list[str]:
    listing = sandbox.sh("nft list chain inet cni_plugins_masquerade masq_checks 2>/dev/null || true")
    return [line.strip() for line in listing.splitlines() if "masquerade comment" in line]


def test_setup_makes_the_reference_rules(sandbox):
    setup(sandbox, ["10.22.0.2/16"])
    assert nat_rules(sandbox) == BUILTIN_CHAINS + [
        f":{CHAIN} -",
        f"-A POSTROUTING -s 10.22.0.2/32 -m comment --comment {COMMENT} -j {CHAIN}",
        f"-A {CHAIN} -d 10.22.0.0/16 -m comment --comment {COMMENT} -j ACCEPT",
        f"-A {CHAIN} ! -d 224.0.0.0/4 -m comment --comment {COMMENT} -j MASQUERADE",
    ]
    assert problems(sandbox, ["10.22.0.2/16"]) == []


def test_setup_twice_adds_nothing_and_repairs_a_deleted_rule(sandbox):
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"])
    made = nat_rules(sandbox), nat_rules(sandbox, 6)
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"])
    assert (nat_rules(sandbox), nat_rules(sandbox, 6)) == made
    sandbox.sh("ip6tables -w -t nat -D POSTROUTING 1")
    assert problems(sandbox, ["10.22.0.2/16", "2001:db8::2/64"]) == [
        f"ipMasq (ip6tables): missing rule in table nat: -A POSTROUTING -s 2001:db8::2/128 "
        f"-m comment --comment {COMMENT} -j {CHAIN}"
    ]
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"])
    assert nat_rules(sandbox, 6) == made[1]


def test_dual_stack_v6_rules_use_ip6tables(sandbox):
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"])
    assert nat_rules(sandbox, 6)[4:] == [
        f":{CHAIN} -",
        f"-A POSTROUTING -s 2001:db8::2/128 -m comment --comment {COMMENT} -j {CHAIN}",
        f"-A {CHAIN} -d 2001:db8::/64 -m comment --comment {COMMENT} -j ACCEPT",
        f"-A {CHAIN} ! -d ff00::/8 -m comment --comment {COMMENT} -j MASQUERADE",
    ]


@pytest.mark.parametrize("remove_with", [["10.22.0.2/16", "2001:db8::2/64"], []], ids=["addresses", "no-addresses"])
def test_remove_leaves_nothing_and_tolerates_running_twice(sandbox, remove_with):
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"])
    remove(sandbox, remove_with)
    assert nat_rules(sandbox) == BUILTIN_CHAINS
    assert nat_rules(sandbox, 6) == BUILTIN_CHAINS
    remove(sandbox, remove_with)
    assert nat_rules(sandbox) == BUILTIN_CHAINS


def test_remove_given_one_familys_addresses_removes_the_other_familys_chain_too(sandbox):
    """A dual-stack pod whose IPv6 address is gone by DEL (removed, or DAD failed): the chain
    has the same name in ip6tables, and the kernel tells it is there."""
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"])
    remove(sandbox, ["10.22.0.2/16"])
    assert nat_rules(sandbox) == BUILTIN_CHAINS
    assert nat_rules(sandbox, 6) == BUILTIN_CHAINS


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_remove_for_a_config_without_ipmasq_removes_what_is_there(sandbox, backend):
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"], backend=backend)
    remove(sandbox, [], ip_masq=False)
    assert (nat_rules(sandbox), nat_rules(sandbox, 6)) == (BUILTIN_CHAINS, BUILTIN_CHAINS)
    assert masq_checks(sandbox) == []


def test_remove_keeps_other_attachments(sandbox):
    setup(sandbox, ["10.22.0.2/16"])
    setup(sandbox, ["10.22.0.3/16"], cid="other")
    remove(sandbox, [])
    assert not any(CHAIN in line for line in nat_rules(sandbox))
    assert len([line for line in nat_rules(sandbox) if line.startswith("-A")]) == 3


def test_remove_of_one_interface_keeps_the_chain_another_interface_of_the_container_uses(sandbox):
    """The iptables form names the chain by network and container only: a second interface of
    the same container on the same network shares it, and its DEL (or failed ADD's undo) must
    not take the first's masquerading with it."""
    setup(sandbox, ["10.22.0.2/16"], ifname="eth0")
    setup(sandbox, ["10.22.0.3/16"], ifname="eth1")
    remove(sandbox, ["10.22.0.3/16"], ifname="eth1")
    assert problems(sandbox, ["10.22.0.2/16"]) == []
    assert not any("10.22.0.3" in line for line in nat_rules(sandbox))
    remove(sandbox, ["10.22.0.2/16"], ifname="eth0")
    assert nat_rules(sandbox) == BUILTIN_CHAINS


def test_nftables_backend_setup_check_and_remove(sandbox):
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"], backend="nftables")
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"], backend="nftables")  # retried: no duplicate
    rules = masq_checks(sandbox)
    assert [r.split(" comment ")[0] for r in rules] == [
        "ip saddr 10.22.0.2 ip daddr != 10.22.0.0/16 masquerade",
        "ip6 saddr 2001:db8::2 ip6 daddr != 2001:db8::/64 masquerade",
    ]
    assert all(r.endswith(", net: rkt.kubernetes.io, if: eth0, id: abc123\"") for r in rules)
    assert problems(sandbox, ["10.22.0.2/16", "2001:db8::2/64"], "nftables") == []
    assert nat_rules(sandbox) == BUILTIN_CHAINS  # the iptables form was not touched
    remove(sandbox, [])
    assert masq_checks(sandbox) == []
    assert len(problems(sandbox, ["10.22.0.2/16"], "nftables")) == 1


def test_gc_removes_only_attachments_that_are_not_valid(sandbox):
    for cid, address in (("keep", "10.22.0.2/16"), ("stale", "10.22.0.3/16")):
        setup(sandbox, [address], cid=cid)
        setup(sandbox, [address.replace("10.22", "10.23")], cid=cid, backend="nftables")
    setup(sandbox, ["10.9.0.3/16"], cid="stale", network="othernet")
    errors = call_in_sandbox(sandbox, "net.masquerade", "gc_masquerade", NET, [["keep", "eth0"]])
    assert errors == []
    comments = [line for line in nat_rules(sandbox) if line.startswith("-A")]
    assert len(comments) == 6
    assert all('id: \\"keep\\"' in line or "othernet" in line for line in comments)
    assert [r.split(" masquerade")[0] for r in masq_checks(sandbox)] == ["ip saddr 10.23.0.2 ip daddr != 10.23.0.0/16"]


@pytest.fixture
def logged_tools(tmp_path):
    """A PATH whose firewall programs log their name to a file, then run the real one."""
    log, wrappers = tmp_path / "runs", tmp_path / "bin"
    wrappers.mkdir()
    for tool in ("iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save", "nft"):
        real = shutil.which(tool, path=SYSTEM_DIRS)
        (wrappers / tool).write_text(f'#!/bin/sh\necho {tool} >> {log}\nexec {real} "$@"\n')
        (wrappers / tool).chmod(0o755)

    def runs() -> list[str]:
        done = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return done

    return f"{wrappers}:{SYSTEM_DIRS}", runs


def test_add_and_del_run_one_firewall_program_each(sandbox, logged_tools):
    path, runs = logged_tools
    setup(sandbox, ["10.22.0.2/16"], path=path)
    assert runs() == ["iptables-restore"]
    remove(sandbox, ["10.22.0.2/16"], path=path)
    assert runs() == ["iptables-restore"]  # and no nft: the kernel says it has no such table
    remove(sandbox, ["10.22.0.2/16"], path=path)
    assert runs() == []  # a DEL retried: the kernel says the chain is gone
    setup(sandbox, ["10.22.0.2/16", "2001:db8::2/64"], backend="nftables", path=path)
    assert runs() == ["nft"]


def test_remove_for_a_config_without_ipmasq_runs_no_program_when_nothing_is_there(sandbox, logged_tools):
    """A DEL with ipMasq off looks for rules an earlier config made by asking the kernel,
    so without such rules it costs no program."""
    path, runs = logged_tools
    setup(sandbox, ["10.22.0.3/16"], cid="other")  # the nat table exists, another pod's chain too
    runs()
    remove(sandbox, ["10.22.0.2/16"], path=path, ip_masq=False)
    assert runs() == []
    assert len([line for line in nat_rules(sandbox) if line.startswith("-A")]) == 3


# ---- side by side with Debian's Go bridge ---------------------------------------------

def go_config(data_dir: str, ip_masq: bool) -> dict:
    return {
        "cniVersion": "0.4.0", "name": NET, "type": "bridge", "bridge": "mybridge", "isGateway": True,
        "ipMasq": ip_masq,
        "ipam": {"type": "host-local", "subnet": "10.22.0.0/16", "gateway": "10.22.0.1", "dataDir": data_dir},
    }


def go_bridge(sandbox, command, config, pod):
    run = run_plugin(sandbox, GO_PLUGIN_DIR, "bridge", command, config, CID, pod)
    assert run.returncode == 0, run.stdout
    return json.loads(run.stdout) if run.stdout else None


@needs_go_plugins
def test_our_remove_deletes_the_go_bridges_rules(sandbox, data_dir):
    pod = sandbox.pod()
    result = go_bridge(sandbox, "ADD", go_config(data_dir, True), pod)
    address = result["ips"][0]["address"]
    assert f":{CHAIN} -" in nat_rules(sandbox)
    remove(sandbox, [address])
    assert nat_rules(sandbox) == BUILTIN_CHAINS
    # Go 1.1.1's own tear-down fails once the chain is gone (it does not read iptables-nft's
    # "does not exist" as absence), so the veth and reservation go with an ipMasq-less DEL.
    go_bridge(sandbox, "DEL", go_config(data_dir, False), pod)


@needs_go_plugins
def test_our_rules_equal_the_go_bridges_and_a_go_del_removes_them(sandbox, data_dir):
    pod = sandbox.pod()
    result = go_bridge(sandbox, "ADD", go_config(data_dir, True), pod)
    go_rules = nat_rules(sandbox)
    remove(sandbox, [result["ips"][0]["address"]])
    setup(sandbox, [result["ips"][0]["address"]])
    assert nat_rules(sandbox) == go_rules
    go_bridge(sandbox, "DEL", go_config(data_dir, True), pod)  # finds the address on eth0
    assert nat_rules(sandbox) == BUILTIN_CHAINS
