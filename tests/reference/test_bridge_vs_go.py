"""Side by side with Debian's Go `bridge` + `host-local` (/usr/lib/cni): the same invocation
through each, every one in its own sandbox, must give the same result, the same host state and
the same error code; and each implementation's DEL must clean up the other's attachment."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from conftest import GO_PLUGIN_DIR, needs_go_plugins
from go_sides import CID, RKT_CONFIG, Side, normalise, reservations
from plugin_calls import cni_env
from sandbox import PluginRun

pytestmark = needs_go_plugins


def add_on_both(sides, config_for) -> list[tuple[Side, PluginRun]]:
    runs = []
    for side in sides:
        pod = side.sandbox.pod()
        runs.append((side, side.cni("ADD", config_for(side), pod)))
    return runs


# ---- results and host state ------------------------------------------------------------

VARIANTS = {
    "rkt-guide-no-version": lambda s: s.config(),
    "rkt-guide-0.2.0": lambda s: s.config(cniVersion="0.2.0"),
    "rkt-guide-0.3.1": lambda s: s.config(cniVersion="0.3.1"),
    "rkt-guide-0.4.0": lambda s: s.config(cniVersion="0.4.0"),
    "rkt-guide-1.0.0": lambda s: s.config(cniVersion="1.0.0"),
    "layer-2-only": lambda s: s.config(cniVersion="1.0.0", ipam={}, ipMasq=False, isGateway=False),
    "default-gateway": lambda s: s.config(cniVersion="1.0.0", isDefaultGateway=True,
                                          ipam=dict(RKT_CONFIG["ipam"], routes=[], dataDir=s.data_dir)),
    "hairpin": lambda s: s.config(cniVersion="1.0.0", hairpinMode=True),
    "promisc": lambda s: s.config(cniVersion="1.0.0", promiscMode=True),
    "mac-and-dns": lambda s: s.config(cniVersion="1.0.0", runtimeConfig={"mac": "02:aa:bb:cc:dd:ee"},
                                      dns={"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}),
    # a MAC in a form Go's net.ParseMAC takes, over an args.cni.mac that Go never parses
    "mac-in-go-s-other-form-over-a-bad-one": lambda s: s.config(
        cniVersion="1.0.0", args={"cni": {"mac": "zz"}}, runtimeConfig={"mac": "02-AA-BB-CC-DD-EE"}),
    # Go's decoder matches keys ignoring case: the same file must configure the same pod with ours
    "keys-in-other-case": lambda s: {
        "CNIVersion": "1.0.0", "Name": "rkt.kubernetes.io", "Type": "bridge", "Bridge": "mybridge", "MTU": 1460,
        "IsGateway": True, "ipmasq": True, "HAIRPINMODE": True, "RuntimeConfig": {"MAC": "02:aa:bb:cc:dd:ee"},
        "IPAM": {"Type": "host-local", "Subnet": "10.22.0.0/16", "Gateway": "10.22.0.1",
                 "Routes": [{"Dst": "0.0.0.0/0"}], "DataDir": s.data_dir},
    },
    # and decodes a later spelling of an object into the earlier one: the subnet stays
    "object-key-twice": lambda s: {
        "cniVersion": "1.0.0", "name": "rkt.kubernetes.io", "type": "bridge", "bridge": "mybridge", "isGateway": True,
        "ipam": {"type": "host-local", "subnet": "10.22.0.0/16", "dataDir": s.data_dir},
        "IPAM": {"Gateway": "10.22.0.254", "routes": [{"dst": "0.0.0.0/0"}]},
    },
    "dual-stack": lambda s: s.config(cniVersion="1.0.0", ipam={
        "type": "host-local", "dataDir": s.data_dir,
        "ranges": [[{"subnet": "10.22.0.0/16"}], [{"subnet": "fd00:22::/64"}]],
    }),
    # two addresses per family: ipMasq's chain then has an ACCEPT after the MASQUERADE (AppendUnique)
    "two-ranges-per-family": lambda s: s.config(cniVersion="1.0.0", isGateway=False, ipam={
        "type": "host-local", "dataDir": s.data_dir,
        "ranges": [[{"subnet": "10.22.0.0/16"}], [{"subnet": "10.33.0.0/24"}], [{"subnet": "fd00:22::/64"}],
                   [{"subnet": "fd00:33::/64"}]],
    }),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_add_gives_the_same_result_and_host_state(sides, variant):
    runs = add_on_both(sides, VARIANTS[variant])
    for side, run in runs:
        assert run.returncode == 0, f"{side.name}: {run.stdout!r} {run.stderr!r}"
    (go, go_run), (ours, our_run) = runs
    assert normalise(json.dumps(our_run.json()), ours.sandbox.prefix) == normalise(
        json.dumps(go_run.json()), go.sandbox.prefix
    )
    assert ours.state() == go.state()
    if variant.startswith("mac-"):  # the normalised comparison above hides MACs
        assert our_run.json()["interfaces"][2]["mac"] == go_run.json()["interfaces"][2]["mac"] == "02:aa:bb:cc:dd:ee"


# Go 1.1.1 knows `vlan` but not vlanTrunk nor preserveDefaultVlan (whose default, true, is
# what it does); its gateway port for a VLAN is a veth pair as ours.
VLAN_VARIANTS = {
    "access-port": {"vlan": 100, "isGateway": False},
    "access-port-with-the-gateway": {"vlan": 100, "isGateway": True},
}


@pytest.mark.parametrize("variant", VLAN_VARIANTS)
def test_vlan_ports_match_go_s(sides, variant):
    """The same result, host state and VLAN table of every port. tests/vm runs this on a kernel
    with VLAN filtering; on one without, both refuse the ADD and ours leaves nothing behind."""
    runs = []
    for side in sides:
        pod = side.sandbox.pod()
        before = side.state()
        runs.append((side, side.cni("ADD", side.config(cniVersion="1.0.0", ipMasq=False, **VLAN_VARIANTS[variant]), pod),
                     before))
    if not sides[0].sandbox.has_vlan_filtering():
        assert [run.returncode for _side, run, _before in runs] == [1, 1]
        ours, _run, before = runs[1]
        assert ours.state() == before
        return
    for side, run, _before in runs:
        assert run.returncode == 0, f"{side.name}: {run.stdout!r} {run.stderr!r}"
    (go, go_run, _), (ours, our_run, _) = runs
    assert normalise(json.dumps(our_run.json()), ours.sandbox.prefix) == normalise(
        json.dumps(go_run.json()), go.sandbox.prefix
    )
    assert ours.state() == go.state()
    assert vlan_table(ours, our_run.json()) == vlan_table(go, go_run.json())


def vlan_table(side: Side, result: dict) -> dict[str, list]:
    """`bridge vlan show` by the role of each port: the bridge, the pod's port, the gateway's."""
    roles = {result["interfaces"][0]["name"]: "bridge", result["interfaces"][1]["name"]: "pod port"}
    shown = json.loads(side.sandbox.sh("bridge -j vlan show"))
    return {roles.get(entry["ifname"], "gateway port"): sorted((v["vlan"], sorted(v.get("flags", [])))
                                                               for v in entry["vlans"]) for entry in shown}


def test_pods_on_two_networks_give_the_same_host_state_after_adds_and_a_del(sides):
    """ipMasq's chains and POSTROUTING jumps of several attachments, in Go's order; the DEL
    of one takes only its own."""
    states = {}
    for side in sides:
        networks = [side.config(cniVersion="1.0.0"),
                    side.config(cniVersion="1.0.0", name="net2", bridge="br2",
                                ipam={"type": "host-local", "subnet": "10.99.0.0/24", "dataDir": side.data_dir})]
        pods = [side.sandbox.pod() for _ in range(2)]
        for number, pod in enumerate(pods):
            for ifname, config in zip(("eth0", "eth1"), networks):
                added = side.cni("ADD", config, pod, cid=f"c{number}", ifname=ifname)
                assert added.returncode == 0, f"{side.name}: {added.stdout!r}"
        assert side.cni("DEL", networks[0], pods[0], cid="c0").returncode == 0
        states[side.name] = side.state()
    assert states["ours"] == states["go"]
    assert len([r for r in states["ours"]["iptables"] if r.startswith(":CNI-")]) == 3


# ---- error cases (shared/reference/go-reference-error-behaviour.md) --------------------

ERROR_BASE = {
    "cniVersion": "1.0.0", "name": "benchnet", "type": "bridge", "bridge": "benchbr0", "mtu": 1460,
    "isGateway": True, "ipMasq": False,
    "ipam": {"type": "host-local", "subnet": "10.22.0.0/16", "gateway": "10.22.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
}
UNSET = None


@dataclass(frozen=True)
class ErrorCase:
    row: int  # the row in go-reference-error-behaviour.md (0: not in it; README's list of differences)
    command: str
    go_code: int  # 0 = success
    our_code: int  # the same, or more precise where Go says 999
    config: dict = field(default_factory=dict)  # top-level changes; None removes a key
    ipam: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # CNI_* changes; None unsets
    stdin: bytes | None = None
    before: tuple[str, ...] = ()  # verbs run first with the case's config: "ADD", "DEL", or
    # "ADD-other" (another container in another pod)
    pod: str = "pod"  # "pod", or "missing" for a netns path that does not exist
    prev_result: bool = True  # CHECK gets the earlier ADD's result as prevResult


ERROR_CASES = {
    "malformed-json": ErrorCase(1, "ADD", 6, 6, stdin=b"{not json"),
    "empty-stdin": ErrorCase(2, "ADD", 6, 6, stdin=b""),
    "unknown-command": ErrorCase(4, "FOO", 4, 4),
    "lowercase-command": ErrorCase(5, "add", 4, 4),
    "missing-netns": ErrorCase(7, "ADD", 4, 4, env={"CNI_NETNS": UNSET}),
    "missing-containerid": ErrorCase(8, "ADD", 4, 4, env={"CNI_CONTAINERID": UNSET}),
    "missing-ifname": ErrorCase(9, "ADD", 4, 4, env={"CNI_IFNAME": UNSET}),
    "missing-path": ErrorCase(10, "ADD", 4, 4, env={"CNI_PATH": UNSET}),
    # The netns path names a container that is not there: ours says which variable is wrong.
    "nonexistent-netns-add": ErrorCase(11, "ADD", 999, 4, pod="missing"),
    "nonexistent-netns-del": ErrorCase(12, "DEL", 0, 0, pod="missing"),
    "del-netns-unset": ErrorCase(13, "DEL", 0, 0, env={"CNI_NETNS": UNSET}),
    "del-twice": ErrorCase(15, "DEL", 0, 0, before=("ADD", "DEL")),
    "add-twice": ErrorCase(16, "ADD", 999, 999, before=("ADD",)),
    "version-9.9.9": ErrorCase(19, "ADD", 1, 1, config={"cniVersion": "9.9.9"}),
    "version-garbage": ErrorCase(21, "ADD", 1, 1, config={"cniVersion": "abc"}),
    # Exhaustion is not a config error; both report it with the catch-all code.
    "subnet-exhausted": ErrorCase(22, "ADD", 999, 999, ipam={"subnet": "10.22.0.0/30"}, before=("ADD-other",)),
    "subnet-slash-33": ErrorCase(23, "ADD", 999, 7, ipam={"subnet": "10.22.0.0/33"}),
    "subnet-not-a-cidr": ErrorCase(24, "ADD", 999, 7, ipam={"subnet": "not-a-subnet"}),
    "bridge-name-too-long": ErrorCase(26, "ADD", 999, 7, config={"bridge": "benchbridge01234"}),
    "ifname-too-long": ErrorCase(27, "ADD", 4, 4, env={"CNI_IFNAME": "eth0123456789abc"}),
    "no-ipam": ErrorCase(28, "ADD", 0, 0, config={"ipam": None}),
    "unknown-ipam-type": ErrorCase(29, "ADD", 999, 7, ipam={"type": "nonexistent-bench"}),
    "check-without-prevresult": ErrorCase(30, "CHECK", 999, 7, before=("ADD",), prev_result=False),
    "check-version-0.3.1": ErrorCase(32, "CHECK", 1, 1, config={"cniVersion": "0.3.1"}, before=("ADD",)),
    "check-after-del": ErrorCase(34, "CHECK", 999, 999, before=("ADD", "DEL")),
    "mtu-70000": ErrorCase(35, "ADD", 999, 7, config={"mtu": 70000}),
    "missing-name": ErrorCase(36, "ADD", 7, 7, config={"name": None}),
    "invalid-name": ErrorCase(37, "ADD", 7, 7, config={"name": "bad name/x"}),
    "missing-type": ErrorCase(38, "ADD", 0, 0, config={"type": None}),
    "del-version-9.9.9": ErrorCase(40, "DEL", 1, 1, config={"cniVersion": "9.9.9"}),
    "del-invalid-config": ErrorCase(41, "DEL", 999, 7, ipam={"subnet": "10.22.0.0/33"}),
    # 1.1.1 runs IPAM's CHECK with no IPAM type, and ignores ipMasqBackend
    "check-layer-2-only": ErrorCase(0, "CHECK", 999, 0, config={"ipam": None}, before=("ADD",)),
    "ip-masq-backend-unknown": ErrorCase(0, "ADD", 0, 7, config={"ipMasqBackend": "pf"}),
}


def error_config(side: Side, case: ErrorCase) -> dict:
    config = side.config(ERROR_BASE, **case.config)
    if "ipam" in config:
        config["ipam"].update(case.ipam)
    return config


def run_error_case(side: Side, case: ErrorCase) -> PluginRun:
    pod = side.sandbox.pod() if case.pod == "pod" else "/var/run/netns/nonexistent-" + side.sandbox.prefix
    config = error_config(side, case)
    previous = None
    for verb in case.before:
        target, cid = (side.sandbox.pod(), "other") if verb == "ADD-other" else (pod, CID)
        run = side.cni(verb.split("-")[0], dict(config, prevResult=previous) if previous else config, target, cid)
        assert run.returncode == 0, f"{side.name} {verb}: {run.stdout!r}"
        previous = run.json() if verb == "ADD" else previous
    if case.command == "CHECK" and previous and case.prev_result:
        config["prevResult"] = previous
    env = {k: ("" if v is UNSET else v) for k, v in case.env.items()}
    if case.stdin is None:
        return side.cni(case.command, config, pod, **env)
    full_env = cni_env(case.command, CID, pod, cni_path=side.plugin_dir, **env)
    return side.sandbox.run([f"{side.plugin_dir}/bridge"], env=full_env, stdin=case.stdin)


def exit_code(run: PluginRun) -> int:
    return 0 if run.returncode == 0 else run.json()["code"]


@pytest.mark.parametrize("name", ERROR_CASES)
def test_error_cases_give_the_recorded_code(sides, name):
    case = ERROR_CASES[name]
    go, ours = sides
    go_run, our_run = run_error_case(go, case), run_error_case(ours, case)
    assert exit_code(go_run) == case.go_code, f"the Go plugin changed: {go_run.stdout!r}"
    assert exit_code(our_run) == case.our_code, our_run.stdout.decode()


# ---- an IPAM plugin of Go's, exec'd by each bridge -----------------------------------

# podman's ipam-static network (corpus: podman-libnetwork__ipam-static.conflist), in the static
# plugin's own address format
STATIC_IPAM = {"type": "static", "addresses": [{"address": "10.89.0.89/16", "gateway": "10.89.0.1"}],
               "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.89.0.1"]}}


def test_go_static_ipam_under_each_bridge_gives_the_same_pod(sides):
    """Our bridge finds a Go IPAM plugin on CNI_PATH, execs it and uses its result as Go's
    bridge does: same result, same host state, CHECK passes, DEL leaves the same state."""
    outcomes = {}
    for side in sides:
        config = side.config(cniVersion="0.4.0", bridge="cni-podman125", hairpinMode=True, mtu=None,
                             ipam=STATIC_IPAM)
        cni_path = {"CNI_PATH": f"{side.plugin_dir}:{GO_PLUGIN_DIR}"}
        pod = side.sandbox.pod()
        add = side.cni("ADD", config, pod, **cni_path)
        assert add.returncode == 0, f"{side.name}: {add.stdout!r} {add.stderr!r}"
        result, added = normalise(add.stdout.decode(), side.sandbox.prefix), side.state()
        check = side.cni("CHECK", dict(config, prevResult=add.json()), pod, **cni_path)
        delete = side.cni("DEL", dict(config, prevResult=add.json()), pod, **cni_path)
        outcomes[side.name] = {"result": json.loads(result), "added": added, "check": check.returncode,
                               "del": delete.returncode, "after": side.state()}
    # Debian's Go bridge (1.1.1) prints the config's dns, here none, dropping IPAM's; ours passes
    # IPAM's on when the config sets none, as upstream's bridge does since v1.2.0 (plugins#733)
    assert outcomes["go"]["result"].pop("dns") == {}
    assert outcomes["ours"]["result"].pop("dns") == STATIC_IPAM["dns"]
    for step in ("result", "added", "check", "del", "after"):
        assert outcomes["ours"][step] == outcomes["go"][step], step
    assert outcomes["ours"]["result"]["ips"][0]["address"] == "10.89.0.89/16"
    assert (outcomes["ours"]["check"], outcomes["ours"]["del"]) == (0, 0)


# ---- each implementation's DEL cleans up the other's attachment ------------------------

@pytest.mark.parametrize(("adder", "deleter"), [("go", "ours"), ("ours", "go")])
def test_del_removes_the_other_implementations_attachment(sides, adder, deleter):
    by_name = {side.name: side for side in sides}
    side = by_name[adder]  # one sandbox; the other implementation's plugins run in it too
    config = side.config(cniVersion="1.0.0")
    warm_up = side.sandbox.pod()  # the bridge and the nat table stay once made, by design
    assert side.cni("ADD", config, warm_up, cid="warm-up").returncode == 0
    assert side.cni("DEL", config, warm_up, cid="warm-up").returncode == 0
    before = side.state()

    pod = side.sandbox.pod()
    added = side.cni("ADD", config, pod)
    assert added.returncode == 0, added.stdout
    deleted = side.cni("DEL", dict(config, prevResult=added.json()), pod, plugin_dir=by_name[deleter].plugin_dir)
    assert deleted.returncode == 0, deleted.stdout
    side.sandbox.remove_pod(pod)
    after = side.state()
    assert after == before


def test_del_after_the_pod_netns_is_gone_removes_the_rules_the_reference_leaks(sides):
    """The reference learns the pod's addresses from its interface, so with the netns gone its
    ipMasq rules stay (plugins #810); ours takes them from prevResult."""
    leftovers = {}
    for side in sides:
        config = side.config(cniVersion="1.0.0")
        pod, added = side.added_pod(config)
        side.sandbox.remove_pod(pod)
        deleted = side.cni("DEL", dict(config, prevResult=added), pod)
        assert deleted.returncode == 0, deleted.stdout
        state = side.state()
        assert reservations(state) == [], f"{side.name} kept a reservation"
        leftovers[side.name] = [r for r in state["iptables"] if r.startswith("-A")]
    assert len(leftovers["go"]) == 3
    assert leftovers["ours"] == []


def _rules_removed_by_hand(side: Side) -> dict:
    chain = next(line.split()[0][1:] for line in side.state()["iptables"] if line.startswith(":CNI-"))
    side.sandbox.sh(f"iptables -w -t nat -F POSTROUTING && iptables -w -t nat -F {chain} && iptables -w -t nat -X {chain}")
    return {}


# what happened between ADD and DEL -> the DEL's config changes; (Go's DEL exit code, ours)
CHANGED_BEFORE_DEL = {
    # Go's DEL looks for the rules only when the config asks for ipMasq: they stay
    "ipmasq-turned-off": (lambda side: {"ipMasq": False}, 0, 0),
    # Go 1.1.1 reads iptables-nft's "Chain ... does not exist" as a failure: the DEL never succeeds
    "rules-removed-by-hand": (_rules_removed_by_hand, 999, 0),
}


@pytest.mark.parametrize("name", CHANGED_BEFORE_DEL)
def test_del_after_the_rules_or_the_config_changed_leaves_no_rules_where_go_does(sides, name):
    change, go_code, our_code = CHANGED_BEFORE_DEL[name]
    outcomes = {}
    for side in sides:
        config = side.config(cniVersion="1.0.0")
        pod = side.added_pod(config)[0]
        deleted = side.cni("DEL", side.config(config, **change(side)), pod)
        outcomes[side.name] = exit_code(deleted), [r for r in side.state()["iptables"] if "CNI-" in r]
    assert outcomes["ours"] == (our_code, [])
    assert outcomes["go"][0] == go_code
    if name == "ipmasq-turned-off":
        assert len(outcomes["go"][1]) == 4  # the chain, its two rules and the jump


# ---- CHECK with a prevResult a runtime mangled ---------------------------------------------

def _first_interface(result: dict, **changes) -> dict:
    interfaces = [dict(result["interfaces"][0], **changes), *result["interfaces"][1:]]
    return dict(result, interfaces=interfaces)


# (mutation of the ADD's own result, Go's exit code, ours): Go's decoder ignores a field its
# types for that version lack, re-encodes a prevResult (1.0 is then 1), and refuses a wrong
# type with a plain error (999), where ours says decoding failure (6).
PREV_RESULT_CASES = {
    "interface-mtu-not-a-number-in-1.0.0": (lambda r: _first_interface(r, mtu="x"), 0, 0),
    "interface-pciID-not-a-string-in-1.0.0": (lambda r: _first_interface(r, pciID=7), 0, 0),
    "ip-interface-whole-float": (lambda r: dict(r, ips=[dict(r["ips"][0], interface=float(r["ips"][0]["interface"]))]), 0, 0),
    "interface-name-not-a-string": (lambda r: _first_interface(r, name=5), 999, 6),
    "route-gw-not-a-string": (lambda r: dict(r, routes=[dict(r["routes"][0], gw=1)]), 999, 6),
}


@pytest.mark.parametrize("name", PREV_RESULT_CASES)
def test_check_with_a_mangled_prev_result_gives_go_s_outcome(sides, name):
    mutate, go_code, our_code = PREV_RESULT_CASES[name]
    codes = {}
    for side in sides:
        config = side.config(cniVersion="1.0.0")
        pod, added = side.added_pod(config)
        codes[side.name] = exit_code(side.cni("CHECK", dict(config, prevResult=mutate(added)), pod))
    assert codes == {"go": go_code, "ours": our_code}
