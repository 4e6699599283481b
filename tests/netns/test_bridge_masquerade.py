"""ipMasq through the bridge: rules made on ADD, checked by CHECK, gone after DEL in every case."""

from __future__ import annotations

import pytest

from bridge_harness import pod_name, remove_pod_with_veth


def chain_lines(sandbox) -> list[str]:
    return [line for line in sandbox.sh("iptables-save -t nat 2>/dev/null || true").splitlines() if "CNI-" in line]


def nft_masq_rules(sandbox) -> list[str]:
    listing = sandbox.sh("nft list chain inet cni_plugins_masquerade masq_checks 2>/dev/null || true")
    return [line.strip() for line in listing.splitlines() if " masquerade " in line]


@pytest.fixture
def masq_bridge(sandbox, bridge):
    """ipMasq on; the nat table exists beforehand (an emptied table stays, as with the reference)."""
    sandbox.sh("iptables -t nat -A POSTROUTING -j RETURN && iptables -t nat -D POSTROUTING -j RETURN")
    bridge.config["ipMasq"] = True
    return bridge


def test_add_makes_rules_check_sees_them_del_removes_them(sandbox, masq_bridge):
    pod = sandbox.pod()
    before = masq_bridge.state()
    result = masq_bridge.add(pod)
    rules = chain_lines(sandbox)
    assert any("-s 10.22.0.2/32" in r and 'name: \\"testnet\\" id: \\"cid1\\"' in r for r in rules), rules
    check = masq_bridge.run("CHECK", pod, config=masq_bridge.with_prev(result))
    assert check.returncode == 0, check.stdout
    masq_bridge.delete(pod, config=masq_bridge.with_prev(result))
    assert chain_lines(sandbox) == []
    assert masq_bridge.state_without_bridge() == before


def test_nftables_backend_add_check_del(sandbox, masq_bridge):
    """ipMasqBackend "nftables": one rule per address in upstream's table, none in iptables;
    CHECK sees them and notices one deleted by hand; DEL removes them (the table stays, as
    upstream leaves it)."""
    masq_bridge.config["ipMasqBackend"] = "nftables"
    masq_bridge.config["ipam"] = {"type": "host-local", "dataDir": masq_bridge.data_dir,
                                  "ranges": [[{"subnet": "10.22.0.0/16"}], [{"subnet": "fd00:22::/64"}]]}
    pod = sandbox.pod()
    result = masq_bridge.add(pod)
    assert [r.split(" comment ")[0] for r in nft_masq_rules(sandbox)] == [
        "ip saddr 10.22.0.2 ip daddr != 10.22.0.0/16 masquerade",
        "ip6 saddr fd00:22::2 ip6 daddr != fd00:22::/64 masquerade",
    ]
    assert chain_lines(sandbox) == []
    check = masq_bridge.run("CHECK", pod, config=masq_bridge.with_prev(result))
    assert check.returncode == 0, check.stdout
    handle = sandbox.sh("nft -a list chain inet cni_plugins_masquerade masq_checks | grep 'ip6 saddr'").split()[-1]
    sandbox.sh(f"nft delete rule inet cni_plugins_masquerade masq_checks handle {handle}")
    check = masq_bridge.run("CHECK", pod, config=masq_bridge.with_prev(result))
    assert check.returncode == 1 and "ip6 saddr == fd00:22::2" in check.json()["msg"], check.stdout
    masq_bridge.delete(pod, config=masq_bridge.with_prev(result))
    assert nft_masq_rules(sandbox) == []


def test_check_reports_a_missing_masquerade_rule(sandbox, masq_bridge):
    pod = sandbox.pod()
    result = masq_bridge.add(pod)
    sandbox.sh("iptables -t nat -F POSTROUTING")
    done = masq_bridge.run("CHECK", pod, config=masq_bridge.with_prev(result))
    assert done.returncode == 1 and "ipMasq" in done.json()["msg"]


@pytest.mark.parametrize("prev", ["x", {"cniVersion": "1.0.0", "ips": "x"}, {"cniVersion": "1.0.0", "ips": [{}]}])
def test_del_with_the_link_gone_and_a_prev_result_it_cannot_read_takes_the_reservation(sandbox, masq_bridge, prev):
    """DEL converges: a retried DEL (the link already gone) with a broken prevResult still
    succeeds and removes the rules (Go ignores prevResult on DEL)."""
    pod = sandbox.pod()
    masq_bridge.add(pod)
    sandbox.sh("ip link del eth0", netns=pod_name(pod))
    masq_bridge.delete(pod, config={**masq_bridge.config, "prevResult": prev})
    assert chain_lines(sandbox) == []
    assert masq_bridge.reservations() == []


@pytest.mark.parametrize("how", ["empty netns", "netns gone", "link gone"])
def test_del_removes_rules_when_the_link_cannot_tell_the_addresses(sandbox, masq_bridge, how):
    """The reference leaks these (plugins #810); we use prevResult or the reservation."""
    pod = sandbox.pod()
    before = masq_bridge.state()
    result = masq_bridge.add(pod)
    if how == "empty netns":  # containerd and nerdctl; with the prevResult of spec 0.4.0+
        masq_bridge.delete("", config=masq_bridge.with_prev(result))
        remove_pod_with_veth(sandbox, pod, result["interfaces"][1]["name"])
        before = {k: v for k, v in before.items() if k != pod_name(pod)}
    elif how == "netns gone":  # no prevResult (spec 0.3.1, rkt): the reservation tells
        remove_pod_with_veth(sandbox, pod, result["interfaces"][1]["name"])
        masq_bridge.delete(pod)
        before = {k: v for k, v in before.items() if k != pod_name(pod)}
    else:
        sandbox.sh("ip link del eth0", netns=pod_name(pod))
        masq_bridge.delete(pod)
    assert chain_lines(sandbox) == []
    assert masq_bridge.state_without_bridge() == before


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_del_removes_the_rules_after_ipmasq_was_turned_off_in_the_config(sandbox, masq_bridge, backend):
    """The rules are this attachment's whatever the config says now (the reference leaves
    them: its DEL looks only when the config asks for ipMasq)."""
    masq_bridge.config["ipMasqBackend"] = backend
    pod = sandbox.pod()
    masq_bridge.add(pod)
    assert chain_lines(sandbox) or nft_masq_rules(sandbox)
    masq_bridge.delete(pod, config={**masq_bridge.config, "ipMasq": False})
    assert chain_lines(sandbox) == []
    assert nft_masq_rules(sandbox) == []


def test_failed_add_after_masquerade_removes_the_rules(sandbox, masq_bridge):
    """A route via an unreachable gateway fails after IPAM; with ipMasq the state is still as before."""
    masq_bridge.config["ipam"]["gateway"] = "192.0.2.1"
    pod = sandbox.pod()
    before = masq_bridge.state()
    done = masq_bridge.run("ADD", pod)
    assert done.returncode == 1
    assert masq_bridge.state() == before


def test_failed_add_of_a_second_interface_keeps_the_first_interfaces_masquerading(sandbox, masq_bridge):
    """Both interfaces of the container share one iptables chain; the failed ADD's undo removes
    only its own jump (the second default route makes it fail after the rules)."""
    pod = sandbox.pod()
    first = masq_bridge.add(pod, ifname="eth0")
    rules = chain_lines(sandbox)
    failed = masq_bridge.run("ADD", pod, ifname="eth1")
    assert failed.returncode == 1 and "0.0.0.0/0" in failed.json()["msg"]
    assert chain_lines(sandbox) == rules
    check = masq_bridge.run("CHECK", pod, ifname="eth0", config=masq_bridge.with_prev(first))
    assert check.returncode == 0, check.stdout


def test_gc_removes_rules_of_attachments_no_longer_valid(sandbox, masq_bridge):
    masq_bridge.config["cniVersion"] = "1.1.0"
    keep, drop = sandbox.pod("keep"), sandbox.pod("drop")
    masq_bridge.add(keep, "cid-keep")
    masq_bridge.add(drop, "cid-drop")
    gc_config = {**masq_bridge.config, "cni.dev/valid-attachments": [{"containerID": "cid-keep", "ifname": "eth0"}]}
    done = masq_bridge.run("GC", None, cid="", ifname="", config=gc_config)
    assert done.returncode == 0, done.stdout
    rules = chain_lines(sandbox)
    assert any("cid-keep" in r for r in rules) and not any("cid-drop" in r for r in rules)


def test_gc_without_the_attachment_list_is_refused_and_removes_nothing(sandbox, masq_bridge):
    masq_bridge.config["cniVersion"] = "1.1.0"
    masq_bridge.add(sandbox.pod(), "cid-live")
    rules = chain_lines(sandbox)
    done = masq_bridge.run("GC", None, cid="", ifname="", config=dict(masq_bridge.config))
    assert done.returncode == 1
    reply = done.json()
    assert reply["code"] == 7 and "cni.dev/valid-attachments" in reply["msg"]
    assert chain_lines(sandbox) == rules
