"""The bridge plugin in real network namespaces: links, addresses, results, clean-up."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cni_rkt.protocol import spec
from bridge_harness import ip_json, link_details, pod_name, remove_pod_with_veth


def test_two_pods_ping_each_other_and_the_gateway(sandbox, bridge):
    before = bridge.state()
    pod_a, pod_b = sandbox.pod("a"), sandbox.pod("b")
    res_a = bridge.add(pod_a, "cid-a")
    res_b = bridge.add(pod_b, "cid-b")
    addr_a = res_a["ips"][0]["address"].split("/")[0]
    addr_b = res_b["ips"][0]["address"].split("/")[0]
    assert {addr_a, addr_b} == {"10.22.0.2", "10.22.0.3"}
    assert res_a["ips"][0]["gateway"] == "10.22.0.1"
    for src, dst in ((pod_a, addr_b), (pod_b, addr_a), (pod_a, "10.22.0.1"), (pod_b, "10.22.0.1")):
        sandbox.sh(f"ping -c1 -W2 {dst}", netns=pod_name(src))
    bridge.delete(pod_a, "cid-a")
    bridge.delete(pod_b, "cid-b")
    sandbox.remove_pod(pod_a)
    sandbox.remove_pod(pod_b)
    assert bridge.state_without_bridge() == before


def test_result_interfaces_are_bridge_host_veth_and_container(sandbox, bridge):
    pod = sandbox.pod()
    result = bridge.add(pod)
    br, host, cont = result["interfaces"]
    assert br["name"] == "tbr0" and "sandbox" not in br
    assert host["name"].startswith("veth") and len(host["name"]) == 12 and "sandbox" not in host
    assert cont == {"name": "eth0", "mac": cont["mac"], "sandbox": pod}
    assert link_details(sandbox, host["name"])["address"] == host["mac"]
    assert link_details(sandbox, "eth0", pod_name(pod))["address"] == cont["mac"]
    assert link_details(sandbox, "tbr0")["address"] == br["mac"]
    assert result["ips"] == [{"interface": 2, "address": "10.22.0.2/16", "gateway": "10.22.0.1"}]
    routes = ip_json(sandbox, "route show default", pod_name(pod))
    assert routes[0]["gateway"] == "10.22.0.1" and routes[0]["dev"] == "eth0"


def test_mtu_is_set_on_bridge_and_both_veth_ends(sandbox, bridge):
    bridge.config["mtu"] = 1400
    pod = sandbox.pod()
    result = bridge.add(pod)
    host_veth = result["interfaces"][1]["name"]
    assert link_details(sandbox, "tbr0")["mtu"] == 1400
    assert link_details(sandbox, host_veth)["mtu"] == 1400
    assert link_details(sandbox, "eth0", pod_name(pod))["mtu"] == 1400


@pytest.mark.parametrize("key, flag", [("hairpinMode", "hairpin"), ("portIsolation", "isolated")])
def test_port_flags_on_the_host_veth(sandbox, bridge, key, flag):
    bridge.config[key] = True
    pod = sandbox.pod()
    result = bridge.add(pod)
    port = link_details(sandbox, result["interfaces"][1]["name"])
    assert port["linkinfo"]["info_slave_kind"] == "bridge"
    assert port["linkinfo"]["info_slave_data"][flag] is True
    check = bridge.run("CHECK", pod, config=bridge.with_prev(result))
    assert check.returncode == 0, check.stdout


def test_promisc_mode_sets_the_bridge_promiscuous(sandbox, bridge):
    bridge.config["promiscMode"] = True
    bridge.add(sandbox.pod())
    assert link_details(sandbox, "tbr0")["promiscuity"] >= 1


def test_without_promisc_the_bridge_is_not_promiscuous(sandbox, bridge):
    bridge.add(sandbox.pod())
    assert link_details(sandbox, "tbr0")["promiscuity"] == 0


def refused_without_vlan_filtering(sandbox, bridge, done, before: dict) -> bool:
    """On a kernel without VLAN filtering: the VLAN ADD failed, naming it, and changed nothing
    (asserted). False on a kernel with it, where the test goes on."""
    if sandbox.has_vlan_filtering():
        return False
    assert done.returncode == 1 and "VLAN filtering" in done.json()["msg"], done.stdout
    assert bridge.state() == before
    return True


@pytest.mark.parametrize(
    "keys, expected",
    [
        ({"vlan": 100}, {(100, True, True)}),
        # a port has one PVID: VLAN 1 stays, egress untagged, as with Go's plugin
        ({"vlan": 100, "preserveDefaultVlan": True}, {(1, False, True), (100, True, True)}),
        ({"vlanTrunk": [{"id": 7}, {"minID": 10, "maxID": 12}]}, {(7, False, False), (10, False, False),
                                                                   (11, False, False), (12, False, False)}),
    ],
)
def test_vlan_access_and_trunk_ports(sandbox, bridge, keys, expected):
    """With kernel support the port carries exactly the VLANs asked for; without, ADD fails cleanly."""
    bridge.config.update({"isGateway": False, "preserveDefaultVlan": False, **keys})
    pod = sandbox.pod()
    before = bridge.state()
    done = bridge.run("ADD", pod)
    if refused_without_vlan_filtering(sandbox, bridge, done, before):
        return
    assert done.returncode == 0, done.stdout
    host_veth = done.json()["interfaces"][1]["name"]
    assert link_details(sandbox, "tbr0")["linkinfo"]["info_data"]["vlan_filtering"] == 1
    shown = json.loads(sandbox.sh(f"bridge -j vlan show dev {host_veth}"))
    vlans = {(v["vlan"], "PVID" in v.get("flags", []), "Egress Untagged" in v.get("flags", []))
             for entry in shown for v in entry["vlans"]}
    assert vlans == expected


def test_dual_stack(sandbox, bridge):
    bridge.config["ipam"] = {
        "type": "host-local",
        "ranges": [[{"subnet": "10.22.0.0/16"}], [{"subnet": "fd00:22::/64"}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
        "dataDir": bridge.data_dir,
    }
    pod_a, pod_b = sandbox.pod("a"), sandbox.pod("b")
    res_a = bridge.add(pod_a, "cid-a")
    bridge.add(pod_b, "cid-b")
    assert [ip["address"] for ip in res_a["ips"]] == ["10.22.0.2/16", "fd00:22::2/64"]
    assert [ip["gateway"] for ip in res_a["ips"]] == ["10.22.0.1", "fd00:22::1"]
    bridge_addrs = {a["local"] for a in ip_json(sandbox, "addr show tbr0")[0]["addr_info"]}
    assert {"10.22.0.1", "fd00:22::1"} <= bridge_addrs
    pod_addrs = {a["local"] for a in ip_json(sandbox, "addr show eth0", pod_name(pod_a))[0]["addr_info"]}
    assert {"10.22.0.2", "fd00:22::2"} <= pod_addrs
    v6_default = ip_json(sandbox, "-6 route show default", pod_name(pod_a))
    assert v6_default[0]["gateway"] == "fd00:22::1"
    assert sandbox.sh("cat /proc/sys/net/ipv6/conf/eth0/accept_dad", netns=pod_name(pod_a)).strip() == "0"
    sandbox.sh("ping -c1 -W2 fd00:22::3", netns=pod_name(pod_a))
    sandbox.sh("ping -c1 -W2 10.22.0.3", netns=pod_name(pod_a))


def test_layer2_only(sandbox, bridge):
    bridge.config.pop("ipam")
    bridge.config["cniVersion"] = "0.3.1"
    pod = sandbox.pod()
    result = bridge.add(pod)
    assert set(result) == {"cniVersion", "interfaces", "dns"}
    cont = link_details(sandbox, "eth0", pod_name(pod))
    assert "UP" in cont["flags"]
    assert not [a for a in ip_json(sandbox, "addr show eth0", pod_name(pod))[0]["addr_info"] if a["scope"] == "global"]
    assert not [a for a in ip_json(sandbox, "addr show tbr0")[0]["addr_info"] if a["scope"] == "global"]


def test_disable_container_interface_leaves_it_down(sandbox, bridge):
    bridge.config.update({"ipam": {}, "disableContainerInterface": True})
    pod = sandbox.pod()
    bridge.add(pod)
    assert "UP" not in link_details(sandbox, "eth0", pod_name(pod))["flags"]


@pytest.mark.parametrize("written", ["02:aa:bb:cc:dd:ee", "02-AA-BB-CC-DD-EE", "02aa.bbcc.ddee"])  # net.ParseMAC's forms
def test_mac_from_cni_args_is_the_container_mac(sandbox, bridge, written):
    pod = sandbox.pod()
    result = bridge.add(pod, CNI_ARGS=f"IgnoreUnknown=1;MAC={written}")
    assert result["interfaces"][2]["mac"] == "02:aa:bb:cc:dd:ee"
    assert link_details(sandbox, "eth0", pod_name(pod))["address"] == "02:aa:bb:cc:dd:ee"


# --- every spec version --------------------------------------------------------------

VERSIONS = [None, *spec.SUPPORTED_VERSIONS]


@pytest.mark.parametrize("version", VERSIONS, ids=[v or "no-cniVersion" for v in VERSIONS])
def test_result_shape_in_every_version(sandbox, bridge, version):
    if version is None:
        bridge.config.pop("cniVersion")
    else:
        bridge.config["cniVersion"] = version
    pod = sandbox.pod()
    result = bridge.add(pod)
    shown = version or "0.1.0"
    assert result["cniVersion"] == shown
    if spec.is_legacy_result(shown):
        assert result == {"cniVersion": shown, "dns": {},
                          "ip4": {"ip": "10.22.0.2/16", "gateway": "10.22.0.1", "routes": [{"dst": "0.0.0.0/0"}]}}
    else:
        assert [i["name"] for i in result["interfaces"]][::2] == ["tbr0", "eth0"]
        ip = result["ips"][0]
        assert (ip["address"], ip["gateway"], ip["interface"]) == ("10.22.0.2/16", "10.22.0.1", 2)
        assert ("version" in ip) == spec.has_ip_version_field(shown)
        if spec.has_ip_version_field(shown):
            assert ip["version"] == "4"
        assert result["routes"] == [{"dst": "0.0.0.0/0"}]
    config = bridge.with_prev(result) if spec.supports_check(shown) else bridge.config
    if spec.supports_check(shown):
        check = bridge.run("CHECK", pod, config=config)
        assert check.returncode == 0, check.stdout
    bridge.delete(pod, config=config)
    assert bridge.reservations() == []


# --- rkt, exactly as it execs a plugin -----------------------------------------------

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "rkt", "net.d", "10-rkt.kubernetes.io.conf")


def test_rkt_style_invocation_of_the_guide_config(sandbox, cni_bin, tmp_path):
    """rkt: raw file bytes, CNI_VERSION=0.1.0, three-entry CNI_PATH, cni-<hex> netns, UUID id."""
    import secrets
    import uuid

    from sandbox import create_netns, delete_netns

    raw = open(EXAMPLE, "rb").read()
    confdir, stage1 = tmp_path / "etc-rkt", tmp_path / "stage1"
    (confdir / "net.d").mkdir(parents=True)
    plugins = stage1 / "usr" / "lib" / "rkt" / "plugins" / "net"
    plugins.mkdir(parents=True)
    for name in ("bridge", "host-local"):
        os.symlink(os.path.join(cni_bin, name), plugins / name)
    cni_path = f"{confdir}/net.d:/usr/lib/rkt/plugins/net:{plugins}"
    state = tmp_path / "var-lib-cni"
    state.mkdir()
    netns_name = f"cni-{sandbox.prefix}-{secrets.token_hex(8)}"
    netns_path = create_netns(netns_name)
    pod_id = str(uuid.uuid4())
    try:
        def rkt_exec(command: str):
            env = {**os.environ, "CNI_VERSION": "0.1.0", "CNI_COMMAND": command, "CNI_CONTAINERID": pod_id,
                   "CNI_NETNS": netns_path, "CNI_ARGS": "", "CNI_IFNAME": "eth0", "CNI_PATH": cni_path}
            # host-local's default dataDir (/var/lib/cni) lands in a temp dir, in this command's mounts only
            wrapped = ["sh", "-c", f"mount -t tmpfs none /var/lib && mkdir /var/lib/cni && "
                       f"mount --bind {state} /var/lib/cni && exec {plugins}/bridge"]
            return sandbox.run(wrapped, env=env, stdin=raw)

        added = rkt_exec("ADD")
        assert added.returncode == 0, (added.stdout, added.stderr)
        # rkt decodes the 0.1.0/0.2.0 shape and reads only ip4
        result = json.loads(added.stdout)
        assert result["ip4"]["ip"] == "10.22.0.2/16" and result["ip4"]["gateway"] == "10.22.0.1"
        assert "interfaces" not in result and "ips" not in result
        assert os.listdir(state / "networks" / "rkt.kubernetes.io").count("10.22.0.2") == 1
        sandbox.sh("ping -c1 -W2 10.22.0.1", netns=netns_name)
        assert f'id: \\"{pod_id}\\"' in sandbox.sh("iptables-save -t nat")
        deleted = rkt_exec("DEL")
        assert deleted.returncode == 0, deleted.stdout
        assert "10.22.0.2" not in os.listdir(state / "networks" / "rkt.kubernetes.io")
        assert "CNI-" not in sandbox.sh("iptables-save -t nat")  # the guide's ipMasq rules are gone
        assert not ip_json(sandbox, "link show type veth")
    finally:
        delete_netns(netns_name)


# --- a failed ADD leaves nothing -----------------------------------------------------


def _set(path: str, value):
    def change(config: dict) -> None:
        *parents, last = path.split(".")
        target = config
        for key in parents:
            target = target[key]
        target[last] = value
    return change


FAILURES = {
    "unknown ipam type": (_set("ipam.type", "nonexistent-ipam"), "failed to find plugin"),
    "bad subnet": (_set("ipam.subnet", "10.22.0.0/33"), "10.22.0.0/33"),
    "route via unreachable gateway": (_set("ipam.gateway", "192.0.2.1"), "192.0.2.1"),
    "bridge name too long": (_set("bridge", "tbr0-much-too-long"), "tbr0-much-too-long"),
    "invalid mtu": (_set("mtu", 70000), "70000"),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
def test_failed_add_leaves_the_host_as_it_was(sandbox, bridge, case):
    change, message = FAILURES[case]
    change(bridge.config)
    pod = sandbox.pod()
    before = bridge.state()
    done = bridge.run("ADD", pod)
    assert done.returncode == 1
    assert message in done.json()["msg"] + done.json().get("details", "")
    assert bridge.state() == before


def test_exhausted_subnet_leaves_the_host_as_it_was(sandbox, bridge):
    bridge.config["ipam"]["subnet"] = "10.22.0.0/30"
    bridge.add(sandbox.pod("first"), "cid-first")
    pod = sandbox.pod("second")
    before = bridge.state()
    done = bridge.run("ADD", pod, "cid-second")
    assert done.returncode == 1 and "no IP addresses available" in done.json()["msg"]
    assert bridge.state() == before


@pytest.mark.parametrize("answer", ['{"cniVersion": "1.0.0", "ips": "not-a-list"}',
                                    '{"cniVersion": "1.0.0", "ips": [{"address": "garbage"}]}'])
def test_ipam_that_reserves_then_answers_garbage_leaves_nothing(sandbox, cni_bin, data_dir, tmp_path, answer):
    """The release is registered before IPAM runs: it may have reserved before failing."""
    from bridge_harness import Bridge

    for name in ("bridge", "host-local"):
        os.symlink(os.path.join(cni_bin, name), tmp_path / name)
    garbling = tmp_path / "garbling-ipam"
    garbling.write_text(f"#!/bin/sh\nsed s/garbling-ipam/host-local/ | {cni_bin}/host-local >/dev/null\necho '{answer}'\n")
    garbling.chmod(0o755)
    bridge = Bridge(sandbox, str(tmp_path), data_dir)
    bridge.config["ipam"]["type"] = "garbling-ipam"
    pod = sandbox.pod()
    before = bridge.state()
    done = bridge.run("ADD", pod)
    assert done.returncode == 1 and done.json()["code"] == 6, done.stdout
    assert bridge.state() == before


def test_name_taken_by_a_non_bridge_fails_and_keeps_that_link(sandbox, bridge):
    sandbox.sh("ip link add tbr0 type veth peer name tbr0peer")
    pod = sandbox.pod()
    before = bridge.state()
    done = bridge.run("ADD", pod)
    assert done.returncode == 1 and "already exists but is not a bridge" in done.json()["msg"]
    assert bridge.state() == before


def test_container_interface_already_present_fails_cleanly(sandbox, bridge):
    pod = sandbox.pod()
    sandbox.sh("ip link add eth0 type veth peer name eth0peer", netns=pod_name(pod))
    before = bridge.state()
    done = bridge.run("ADD", pod)
    assert done.returncode == 1
    assert done.json()["msg"] == "container veth name provided (eth0) already exists"
    assert bridge.state() == before


def test_missing_netns_on_add_creates_nothing(sandbox, bridge):
    before = bridge.state()
    done = bridge.run("ADD", f"/var/run/netns/{sandbox.prefix}-nonexistent")
    assert done.returncode == 1 and "CNI_NETNS" in done.json().get("details", "")
    assert bridge.state() == before


def test_second_add_of_the_same_attachment_fails_and_keeps_the_first(sandbox, bridge):
    pod = sandbox.pod()
    bridge.add(pod)
    before = bridge.state()
    done = bridge.run("ADD", pod)
    assert done.returncode == 1 and "already exists" in done.json()["msg"]
    assert bridge.state() == before


# --- DEL converges to absent ---------------------------------------------------------


def _dual_stack(config: dict) -> None:
    config["ipam"] = {"type": "host-local", "dataDir": config["ipam"]["dataDir"],
                      "ranges": [[{"subnet": "10.22.0.0/16"}], [{"subnet": "fd00:22::/64"}]]}


# Every config the integration tests above inspect, and then some.
ROUND_TRIP_CONFIGS = {
    "base": lambda c: None,
    "mtu": lambda c: c.update(mtu=1400),
    "hairpin": lambda c: c.update(hairpinMode=True),
    "port isolation": lambda c: c.update(portIsolation=True),
    "promisc": lambda c: c.update(promiscMode=True),
    "dual-stack": _dual_stack,
    "layer 2 only": lambda c: (c.pop("ipam"), c.update(isGateway=False)),
    "disabled container interface": lambda c: c.update(ipam={}, disableContainerInterface=True),
    "default gateway": lambda c: (c["ipam"].pop("routes"), c.update(isDefaultGateway=True)),
    "ipMasq": lambda c: c.update(ipMasq=True),
    "ipMasq nftables": lambda c: c.update(ipMasq=True, ipMasqBackend="nftables"),
    "mac and dns": lambda c: c.update(runtimeConfig={"mac": "02:aa:bb:cc:dd:ee"}, dns={"nameservers": ["10.96.0.10"]}),
    "no cniVersion": lambda c: c.pop("cniVersion"),
}


@pytest.mark.parametrize("name", ROUND_TRIP_CONFIGS, ids=list(ROUND_TRIP_CONFIGS))
def test_add_check_del_restores_the_host(sandbox, bridge, name):
    ROUND_TRIP_CONFIGS[name](bridge.config)
    # the nat tables, once made, stay (as with the reference): make them first
    sandbox.sh("iptables -t nat -A POSTROUTING -j RETURN && iptables -t nat -D POSTROUTING -j RETURN")
    sandbox.sh("ip6tables -t nat -A POSTROUTING -j RETURN && ip6tables -t nat -D POSTROUTING -j RETURN")
    pod = sandbox.pod()
    before = bridge.state()
    result = bridge.add(pod)
    prev = bridge.with_prev(result) if "interfaces" in result else bridge.config
    if "interfaces" in result:
        check = bridge.run("CHECK", pod, config=prev)
        assert check.returncode == 0, check.stdout
    bridge.delete(pod, config=prev)
    after = bridge.state_without_bridge()
    if name == "ipMasq nftables":  # the shared masquerade table stays, emptied, as the reference's
        added = after["nft"].removeprefix(before["nft"])
        assert added.startswith("table inet cni_plugins_masquerade") and "saddr" not in added, added
        after["nft"] = before["nft"]
    assert after == before


VLAN_ROUND_TRIP_CONFIGS = {
    "vlan access port": {"vlan": 100, "isGateway": False},
    "vlan trunk": {"vlanTrunk": [{"id": 7}, {"minID": 10, "maxID": 12}], "isGateway": False},
    "vlan with its gateway port": {"vlan": 100},
}


@pytest.mark.parametrize("name", VLAN_ROUND_TRIP_CONFIGS, ids=list(VLAN_ROUND_TRIP_CONFIGS))
def test_vlan_add_check_del_restores_the_host(sandbox, bridge, name):
    """As above, for VLAN configs (tests/vm runs them on a kernel with VLAN filtering): the
    VLAN's gateway port stays after DEL, as the bridge does. Without kernel support the ADD
    fails and changes nothing."""
    bridge.config.update(VLAN_ROUND_TRIP_CONFIGS[name])
    pod = sandbox.pod()
    before = bridge.state()
    done = bridge.run("ADD", pod)
    if refused_without_vlan_filtering(sandbox, bridge, done, before):
        return
    assert done.returncode == 0, done.stdout
    prev = bridge.with_prev(done.json())
    check = bridge.run("CHECK", pod, config=prev)
    assert check.returncode == 0, check.stdout
    bridge.delete(pod, config=prev)
    if bridge.config.get("isGateway"):
        sandbox.sh("ip link del tbr0.100")  # it stays, as the bridge does; one end of its veth pair
    assert bridge.state_without_bridge() == before


def test_del_twice(sandbox, bridge):
    pod = sandbox.pod()
    bridge.add(pod)
    bridge.delete(pod)
    bridge.delete(pod)
    assert bridge.reservations() == []


def test_del_of_an_add_that_never_happened(sandbox, bridge):
    pod = sandbox.pod()
    before = bridge.state()
    bridge.delete(pod)
    bridge.delete(None)
    bridge.delete(f"/var/run/netns/{sandbox.prefix}-never")
    assert bridge.state() == before


@pytest.mark.parametrize("netns_value", ["", None], ids=["empty", "unset"])
def test_del_without_netns_releases_the_reservation(sandbox, bridge, netns_value):
    pod = sandbox.pod()
    bridge.add(pod)
    bridge.delete(netns_value)
    assert bridge.reservations() == []


def test_del_after_the_pod_netns_is_gone(sandbox, bridge):
    pod = sandbox.pod()
    before = bridge.state()
    result = bridge.add(pod)
    remove_pod_with_veth(sandbox, pod, result["interfaces"][1]["name"])
    bridge.delete(pod)
    assert bridge.reservations() == []
    before_without_pod = {k: v for k, v in before.items() if k != pod_name(pod)}
    assert bridge.state_without_bridge() == before_without_pod


@pytest.mark.parametrize(
    "changes",
    [{"mtu": 70000}, {"bridge": "b" * 16}, {"runtimeConfig": {"mac": "zz"}}, {"hairpinMode": True, "promiscMode": True}],
    ids=["mtu", "bridge", "mac", "hairpin+promisc"],
)
def test_del_removes_the_attachment_whatever_add_only_values_the_config_has_now(sandbox, bridge, changes):
    """The config changed after ADD to values ADD would refuse: DEL still converges (Go's DEL
    does not look at them), or the runtime would retry a failing DEL forever."""
    pod = sandbox.pod()
    before = bridge.state()
    bridge.add(pod)
    bridge.delete(pod, config={**bridge.config, **changes})
    assert bridge.state_without_bridge() == before


def test_del_when_the_link_is_already_gone(sandbox, bridge):
    pod = sandbox.pod()
    before = bridge.state()
    bridge.add(pod)
    sandbox.sh("ip link del eth0", netns=pod_name(pod))
    bridge.delete(pod)
    assert bridge.state_without_bridge() == before


# --- every netns path form -----------------------------------------------------------


@pytest.mark.parametrize("form", ["var-run", "run", "proc-ns", "proc-fd"])
def test_every_netns_path_form(sandbox, bridge, form):
    pod = sandbox.pod()
    holder = None
    fd = None
    try:
        if form == "var-run":
            path = pod
        elif form == "run":
            path = pod.replace("/var/run/", "/run/", 1)
        elif form == "proc-ns":  # containerd: a process already inside the pod's netns
            holder = subprocess.Popen(["ip", "netns", "exec", pod_name(pod), "sleep", "600"])
            path = f"/proc/{holder.pid}/ns/net"
            sandbox.sh(f"for i in $(seq 50); do [ $(readlink {path}) = $(readlink /proc/self/ns/net) ] || exit 0; sleep 0.05; done")
        else:  # buildah: a process holding the netns open as a file descriptor
            fd = os.open(pod, os.O_RDONLY)
            holder = subprocess.Popen(["sleep", "600"], pass_fds=(fd,))
            path = f"/proc/{holder.pid}/fd/{fd}"
        result = bridge.add(path)
        assert result["interfaces"][2]["sandbox"] == path
        assert link_details(sandbox, "eth0", pod_name(pod))["address"] == result["interfaces"][2]["mac"]
        check = bridge.run("CHECK", path, config=bridge.with_prev(result))
        assert check.returncode == 0, check.stdout
        bridge.delete(path)
        assert not ip_json(sandbox, "link show eth0 2>/dev/null || echo []", pod_name(pod))
        assert bridge.reservations() == []
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        if fd is not None:
            os.close(fd)


# --- CHECK ---------------------------------------------------------------------------


def test_check_requires_prev_result(sandbox, bridge):
    pod = sandbox.pod()
    bridge.add(pod)
    done = bridge.run("CHECK", pod)
    assert done.returncode == 1 and done.json()["msg"] == "Required prevResult missing"


def test_check_finds_a_removed_address(sandbox, bridge):
    pod = sandbox.pod()
    result = bridge.add(pod)
    sandbox.sh("ip addr flush dev eth0", netns=pod_name(pod))
    done = bridge.run("CHECK", pod, config=bridge.with_prev(result))
    assert done.returncode == 1
    assert done.json()["msg"] == "Failed to match addr 10.22.0.2/16 on interface eth0"


def test_check_finds_a_removed_gateway_address(sandbox, bridge):
    pod = sandbox.pod()
    result = bridge.add(pod)
    sandbox.sh("ip addr del 10.22.0.1/16 dev tbr0")
    done = bridge.run("CHECK", pod, config=bridge.with_prev(result))
    assert done.returncode == 1 and "10.22.0.1/16" in done.json()["msg"]


def test_check_finds_a_port_moved_off_the_bridge(sandbox, bridge):
    pod = sandbox.pod()
    result = bridge.add(pod)
    sandbox.sh(f"ip link set {result['interfaces'][1]['name']} nomaster")
    done = bridge.run("CHECK", pod, config=bridge.with_prev(result))
    assert done.returncode == 1 and "veth created for bridge tbr0 was not found" in done.json()["msg"]


def _rename_reservation(sandbox, bridge, pod, result):
    path = os.path.join(bridge.data_dir, bridge.config["name"], result["ips"][0]["address"].split("/")[0])
    os.rename(path, path + ".moved")


# What CHECK must notice, each alone, with everything else of the attachment still in place.
CHECK_BREAKS = {
    "IPAM reservation": (_rename_reservation, "Failed to find address added by container cid1"),
    "pod route": (lambda sb, br, pod, r: sb.sh("ip route del default", netns=pod_name(pod)),
                  "Failed to match route 0.0.0.0/0 in the container"),
    "host veth MAC": (lambda sb, br, pod, r: sb.sh(f"ip link set {r['interfaces'][1]['name']} address 02:11:22:33:44:55"),
                      "Mac doesn't match"),
    "bridge MAC": (lambda sb, br, pod, r: sb.sh("ip link set tbr0 address 02:11:22:33:44:56"),
                   "Bridge interface tbr0 Mac doesn't match"),
    "container MAC": (lambda sb, br, pod, r: sb.sh("ip link set eth0 address 02:11:22:33:44:57", netns=pod_name(pod)),
                      "Interface eth0 Mac"),
    "bridge promisc": (lambda sb, br, pod, r: sb.sh("ip link set tbr0 promisc on"), "Promisc Mode False"),
    "veth pair": (lambda sb, br, pod, r: sb.sh("ip link del eth0", netns=pod_name(pod)), "Interface name eth0 not found"),
}


@pytest.mark.parametrize("what", CHECK_BREAKS, ids=list(CHECK_BREAKS))
def test_check_finds_what_is_broken(sandbox, bridge, what):
    brk, message = CHECK_BREAKS[what]
    pod = sandbox.pod()
    result = bridge.add(pod)
    config = bridge.with_prev(result)
    assert bridge.run("CHECK", pod, config=config).returncode == 0
    brk(sandbox, bridge, pod, result)
    done = bridge.run("CHECK", pod, config=config)
    assert done.returncode == 1 and message in done.json()["msg"], done.stdout


# --- macspoofchk ---------------------------------------------------------------------


def test_macspoofchk_drops_frames_from_another_mac(sandbox, bridge):
    sandbox.sh("nft add table bridge nat && nft 'add chain bridge nat PREROUTING "
               "{ type filter hook prerouting priority -300 ; policy accept ; }'")
    bridge.config["macspoofchk"] = True
    pod = sandbox.pod()
    before = bridge.state()
    result = bridge.add(pod)
    assert "cni-br-iface-cid1-eth0-mac" in sandbox.sh("nft list table bridge nat")
    sandbox.sh("ping -c1 -W2 10.22.0.1", netns=pod_name(pod))
    check = bridge.run("CHECK", pod, config=bridge.with_prev(result))
    assert check.returncode == 0, check.stdout
    sandbox.sh("ip link set eth0 address 02:de:ad:be:ef:01", netns=pod_name(pod))
    spoofed = subprocess.run(["ip", "netns", "exec", pod_name(pod), "ping", "-c1", "-W1", "10.22.0.1"],
                             capture_output=True, check=False)
    assert spoofed.returncode != 0
    check = bridge.run("CHECK", pod, config=bridge.with_prev(result))
    assert check.returncode == 1  # the container's MAC is not the one in prevResult any more
    bridge.delete(pod, config=bridge.with_prev(result))
    assert "cni-br-iface" not in sandbox.sh("nft list table bridge nat")
    assert bridge.state_without_bridge() == before


# --- gateway options, DNS, DAD -------------------------------------------------------


def test_is_default_gateway_adds_the_default_route(sandbox, bridge):
    bridge.config["isDefaultGateway"] = True
    bridge.config["ipam"].pop("routes")
    pod = sandbox.pod()
    result = bridge.add(pod)
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.22.0.1"}]
    assert ip_json(sandbox, "route show default", pod_name(pod))[0]["gateway"] == "10.22.0.1"


@pytest.mark.parametrize("force", [False, True])
def test_bridge_with_another_address_needs_force_address(sandbox, bridge, force):
    sandbox.sh("ip link add tbr0 type bridge && ip addr add 10.99.0.1/16 dev tbr0")
    bridge.config["forceAddress"] = force
    pod = sandbox.pod()
    before = bridge.state()
    done = bridge.run("ADD", pod)
    bridge_addrs = {a["local"] for a in ip_json(sandbox, "addr show tbr0")[0]["addr_info"] if a["family"] == "inet"}
    if force:
        assert done.returncode == 0, done.stdout
        assert bridge_addrs == {"10.22.0.1"}
    else:
        assert done.returncode == 1
        assert done.json()["msg"] == 'failed to set bridge addr: "tbr0" already has an IP address different from 10.22.0.1/16'
        assert bridge.state() == before


def test_config_dns_replaces_ipam_dns(sandbox, bridge, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\nsearch ipam.example\n")
    bridge.config["ipam"]["resolvConf"] = str(resolv)
    assert bridge.add(sandbox.pod("a"), "cid-a")["dns"] == {"nameservers": ["192.0.2.53"], "search": ["ipam.example"]}
    bridge.config["dns"] = {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}
    assert bridge.add(sandbox.pod("b"), "cid-b")["dns"] == {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}


def test_enabledad_turns_dad_on_and_add_waits_for_it(sandbox, bridge):
    bridge.config.update({"enabledad": True, "isGateway": False})
    bridge.config["ipam"] = {"type": "host-local", "subnet": "fd00:33::/64", "dataDir": bridge.data_dir}
    pod = sandbox.pod()
    bridge.add(pod)
    assert sandbox.sh("cat /proc/sys/net/ipv6/conf/eth0/accept_dad", netns=pod_name(pod)).strip() == "1"
    info = ip_json(sandbox, "-6 addr show dev eth0 scope global", pod_name(pod))[0]["addr_info"]
    assert info[0]["local"] == "fd00:33::2" and not info[0].get("tentative")


# --- STATUS and GC go to IPAM --------------------------------------------------------


def test_status_forwards_to_ipam(sandbox, bridge):
    bridge.config["cniVersion"] = "1.1.0"
    assert bridge.run("STATUS", None, cid="", ifname="").returncode == 0
    bridge.config["ipam"]["type"] = "nonexistent-ipam"
    done = bridge.run("STATUS", None, cid="", ifname="")
    assert done.returncode == 1 and "nonexistent-ipam" in done.json()["msg"]


def test_gc_releases_reservations_of_attachments_no_longer_valid(sandbox, bridge):
    bridge.config["cniVersion"] = "1.1.0"
    bridge.add(sandbox.pod("keep"), "cid-keep")
    bridge.add(sandbox.pod("drop"), "cid-drop")
    gc_config = {**bridge.config, "cni.dev/valid-attachments": [{"containerID": "cid-keep", "ifname": "eth0"}]}
    done = bridge.run("GC", None, cid="", ifname="", config=gc_config)
    assert done.returncode == 0, done.stdout
    assert bridge.reservations() == ["10.22.0.2"]


def test_vlan_gateway_port_carries_the_gateway_address(sandbox, bridge):
    """isGateway with vlan: the gateway address on `tbr0.100`, whose peer is an untagged port of
    VLAN 100; without kernel support ADD fails cleanly (then tests/unit/plugins/test_bridge_gateway.py
    is the proof of the plan)."""
    bridge.config.update({"vlan": 100, "preserveDefaultVlan": False})
    pod = sandbox.pod()
    before = bridge.state()
    done = bridge.run("ADD", pod)
    if refused_without_vlan_filtering(sandbox, bridge, done, before):
        return
    assert done.returncode == 0, done.stdout
    result = done.json()
    assert [i["name"] for i in result["interfaces"]][::2] == ["tbr0", "eth0"]
    assert result["interfaces"][3] == {"name": "tbr0.100", "mac": link_details(sandbox, "tbr0.100")["address"]}
    assert {a["local"] for a in ip_json(sandbox, "addr show tbr0.100")[0]["addr_info"]} >= {"10.22.0.1"}
    ports = ip_json(sandbox, "link show type veth master tbr0")
    gateway_peer = [p for p in ports if p["ifname"] != result["interfaces"][1]["name"]][0]["ifname"]
    shown = json.loads(sandbox.sh(f"bridge -j vlan show dev {gateway_peer}"))
    assert {v["vlan"] for entry in shown for v in entry["vlans"]} == {100}
    sandbox.sh("ping -c1 -W2 10.22.0.1", netns=pod_name(pod))
    check = bridge.run("CHECK", pod, config=bridge.with_prev(result))
    assert check.returncode == 0, check.stdout


def test_vlan_gateway_port_links_are_made_once_and_reused(sandbox):
    """The netlink half of the gateway port, VLAN id 0 (no VLAN programming), as far as this
    kernel allows: a veth pair in the host netns, one end on the bridge, both up; reused after."""
    from cni_rkt.net import links, netns

    sandbox.sh("ip link add tbr0 type bridge && ip link set tbr0 up")
    host = netns.open_netns(sandbox.host_path)
    try:
        with netns.entered(host):
            ipr = links.open_netlink()
        try:
            bridge = links.find_link(ipr, "tbr0")
            gateway, port = links.ensure_vlan_gateway_port(ipr, bridge, "tbr0.7", 0, True)
            again, no_port = links.ensure_vlan_gateway_port(ipr, bridge, "tbr0.7", 0, True)
        finally:
            ipr.close()
    finally:
        host.close()
    assert (again.index, no_port) == (gateway.index, None)
    assert gateway.peer == port.index and port.name.startswith("veth")
    assert link_details(sandbox, port.name)["master"] == "tbr0"
    assert "master" not in link_details(sandbox, "tbr0.7")
    assert "UP" in link_details(sandbox, "tbr0.7")["flags"]
