"""Every rule has a failing and a passing example, and fires where the problem is written."""

from __future__ import annotations

import json

import pytest

from validate_cases import BRIDGE, conf, conflist, ipam, rules, run

from cni_rkt.validate.rules import RULES

LOOPBACK = {"type": "loopback"}
FLANNEL = {"cniVersion": "0.3.1", "name": "fl", "type": "flannel", "delegate": {"isDefaultGateway": True}}
POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    rkt.alpha.kubernetes.io/stage1-name-override: {stage1}
spec:
{host}  containers:
  - name: app
    image: nginx
    securityContext:
      privileged: {privileged}
"""


def pod(stage1="coreos.com/rkt/stage1-fly:1.30.0", host="", privileged="true") -> str:
    return POD.format(stage1=stage1, host=host, privileged=privileged)


def rkt_dir(*texts: str, name="rkt.kubernetes.io") -> dict[str, str]:
    files = {f"rkt/net.d/{i:02d}.conf": t for i, t in enumerate(texts, start=10)}
    files["rkt/net.d/99-k8s.conf"] = conf(name=name, cniVersion="0.2.0", bridge="k8s0",
                                          ipam={"type": "host-local", "subnet": "10.99.0.0/16"})
    return files


SUBNET_ENV = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET={subnet}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"

# rule -> (failing case, passing case, pointer the failing finding must carry or None)
# A case is (files, extra run() keyword arguments); args default to every file.
CASES = {
    "CNI100": (({"a.conf": '{"name": "a",}'}, {}), ({"a.conf": conf()}, {}), None),
    "CNI101": (({"a.conf": '{"cniVersion":"0.4.0","name":"a","name":"b","type":"loopback"}'}, {}),
               ({"a.conf": conf(BRIDGE | {"type": "loopback"}, bridge=None, isGateway=None, ipam=None)}, {}), "/name"),
    "CNI102": (({"a.conf": conf(IPMasq=True)}, {}), ({"a.conf": conf(ipMasq=True)}, {}), "/IPMasq"),
    "CNI103": (({"a.conf": conflist(LOOPBACK)}, {}), ({"a.conflist": conflist(LOOPBACK)}, {}), "/plugins"),
    "CNI104": (({"a.conf": ipam(subnet="{{.PodCIDR}}")}, {}), ({"a.conf": ipam(subnet="10.0.0.0/16")}, {}),
               "/ipam/subnet"),
    "CNI105": (({"a.conf": conf(addIf="true")}, {}), ({"a.conf": conf()}, {}), "/addIf"),
    "CNI106": (({"a.conf": conf(mtu="1460")}, {}), ({"a.conf": conf(mtu=1460)}, {}), "/mtu"),
    "CNI107": (({"a.conf": conf(type="macvlan", bridge=None, isGateway=None, mode="bridged")}, {}),
               ({"a.conf": conf(type="macvlan", bridge=None, isGateway=None, mode="bridge")}, {}), "/mode"),
    "CNI108": (({"a.conf": ipam(gateway="10.22.8")}, {}), ({"a.conf": ipam(gateway="10.22.0.1")}, {}),
               "/ipam/gateway"),
    "CNI110": (({"a.conf": conf(name="my net")}, {}), ({"a.conf": conf(name="my-net")}, {}), "/name"),
    "CNI111": (({"a.conflist": conflist(LOOPBACK, cniVersion=None)}, {}), ({"a.conflist": conflist(LOOPBACK)}, {}),
               ""),
    "CNI112": (({"a.conf": conf(cniVersion="0.5.0")}, {}), ({"a.conf": conf(cniVersion="1.1.0")}, {}), "/cniVersion"),
    "CNI113": (({"a.conflist": conflist(LOOPBACK, cniVersion="0.2.0")}, {}),
               ({"a.conflist": conflist(LOOPBACK, cniVersion="0.3.1")}, {}), "/cniVersion"),
    "CNI114": (({"a.conflist": conflist()}, {}), ({"a.conflist": conflist(LOOPBACK)}, {}), "/plugins"),
    "CNI115": (({"a.conf": conf(runtimeConfig={"mac": "x"})}, {}), ({"a.conf": conf()}, {}), "/runtimeConfig"),
    "CNI116": (({"a.conf": conf(type="/opt/cni/bin/bridge")}, {}), ({"a.conf": conf()}, {}), "/type"),
    "CNI117": (({"a.conflist": conflist({"type": "bandwidth", "ingressRate": 1, "ingressBurst": 1},
                                        cniVersion="0.2.0")}, {}),
               ({"a.conflist": conflist({"type": "bandwidth", "ingressRate": 1, "ingressBurst": 1},
                                        cniVersion="0.3.1")}, {}), "/plugins/0/type"),
    "CNI118": (({"a.conf": conf(type="calico", bridge=None, isGateway=None)}, {}), ({"a.conf": conf()}, {}), "/type"),
    "CNI200": (({"a.conf": ipam(subnet="10.22.0.1/16")}, {}), ({"a.conf": ipam(subnet="10.22.0.0/16")}, {}),
               "/ipam/subnet"),
    "CNI201": (({"a.conf": ipam(rangeStart="10.23.0.1")}, {}), ({"a.conf": ipam(rangeStart="10.22.0.10")}, {}),
               "/ipam/rangeStart"),
    "CNI202": (({"a.conf": ipam(rangeStart="10.22.0.50", rangeEnd="10.22.0.10")}, {}),
               ({"a.conf": ipam(rangeStart="10.22.0.10", rangeEnd="10.22.0.50")}, {}), "/ipam/rangeStart"),
    "CNI203": (({"a.conf": ipam(subnet=None, ranges=[[{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.0.128/25"}]])}, {}),
               ({"a.conf": ipam(subnet=None, ranges=[[{"subnet": "10.0.0.0/25"}, {"subnet": "10.0.0.128/25"}]])}, {}),
               "/ipam/ranges/0/1"),
    "CNI204": (({"a.conf": ipam(subnet="10.0.0.0/31")}, {}), ({"a.conf": ipam(subnet="10.0.0.0/30")}, {}),
               "/ipam/subnet"),
    "CNI205": (({"a.conf": ipam(gateway="10.23.0.1")}, {}), ({"a.conf": ipam(gateway="10.22.0.1")}, {}),
               "/ipam/gateway"),
    "CNI206": (({"a.conf": ipam(subnet=None)}, {}), ({"a.conf": ipam()}, {}), "/ipam"),
    "CNI207": (({"a.conf": ipam(subnet=None, ranges=[[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]])}, {}),
               ({"a.conf": ipam(subnet=None, ranges=[[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/64"}]])}, {}),
               "/ipam/ranges/0"),
    "CNI208": (({"a.conf": conf(cniVersion="0.2.0", ipam={"type": "host-local", "ranges": [
        [{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.1.0/24"}]]})}, {}),
               ({"a.conf": conf(cniVersion="0.3.1", ipam={"type": "host-local", "ranges": [
                   [{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.1.0/24"}]]})}, {}), "/ipam"),
    "CNI210": (({"a.conf": conf(bridge="a-very-long-bridge0")}, {}), ({"a.conf": conf(bridge="short0")}, {}),
               "/bridge"),
    "CNI211": (({"a.conf": conf(vlan=5000)}, {}), ({"a.conf": conf(vlan=100)}, {}), "/vlan"),
    "CNI212": (({"a.conf": conf(mtu=50)}, {}), ({"a.conf": conf(mtu=1500)}, {}), "/mtu"),
    "CNI213": (({"a.conf": conf(hairpinMode=True, promiscMode=True)}, {}), ({"a.conf": conf(hairpinMode=True)}, {}),
               "/promiscMode"),
    "CNI214": (({"a.conf": conf(disableContainerInterface=True)}, {}),
               ({"a.conf": conf(disableContainerInterface=True, ipam={})}, {}), "/disableContainerInterface"),
    "CNI215": (({"a.conflist": conflist({"type": "portmap", "markMasqBit": 13, "externalSetMarkChain": "X"})}, {}),
               ({"a.conflist": conflist({"type": "portmap", "externalSetMarkChain": "X"})}, {}),
               "/plugins/0/externalSetMarkChain"),
    "CNI216": (({"a.conflist": conflist({"type": "bandwidth", "ingressRate": 1000})}, {}),
               ({"a.conflist": conflist({"type": "bandwidth", "ingressRate": 1000, "ingressBurst": 100})}, {}),
               "/plugins/0/ingressRate"),
    "CNI217": (({"a.conf": conf(FLANNEL, delegate={"name": "x"})}, {}), ({"a.conf": conf(FLANNEL)}, {}),
               "/delegate/name"),
    "CNI300": (({"d/10-a.conf": conf(), "d/20-b.conf": conf(bridge="br2", ipam={"type": "host-local",
                                                                                "subnet": "10.23.0.0/16"})},
                {"args": ["d"]}),
               ({"d/10-a.conf": conf(), "d/20-b.conf": conf(name="net2", bridge="br2",
                                                            ipam={"type": "host-local", "subnet": "10.23.0.0/16"})},
                {"args": ["d"]}), "/name"),
    "CNI301": (({"d/10-a.conf": conf(), "d/20-b.conf": conf(name="net2", bridge="br2")}, {"args": ["d"]}),
               ({"d/10-a.conf": conf(), "d/20-b.conf": conf(name="net2", bridge="br2", ipam={
                   "type": "host-local", "subnet": "10.23.0.0/16"})}, {"args": ["d"]}), "/ipam/subnet"),
    "CNI302": (({"d/10-a.conf": conf(), "d/20-b.conf": conf(name="net2", ipam={"type": "host-local",
                                                                               "subnet": "10.23.0.0/16"})},
                {"args": ["d"]}),
               ({"d/10-a.conf": conf(), "d/20-b.conf": conf(name="net2", bridge="br2", ipam={
                   "type": "host-local", "subnet": "10.23.0.0/16"})}, {"args": ["d"]}), "/bridge"),
    "CNI303": (({"d/10-a.conf": conf(), "d/10-a.conf.bak": conf()}, {"args": ["d"]}),
               ({"d/10-a.conf": conf()}, {"args": ["d"]}), ""),
    "CNI304": (({"d/10-a.conf": "{", "d/20-b.conf": conf()}, {"args": ["d"]}),
               ({"d/10-a.conf": conf()}, {"args": ["d"]}), ""),
    "RKT400": (({"rkt/net.d/10-a.conf": conf(cniVersion=None)}, {"args": ["rkt/net.d"]}),
               (rkt_dir(), {"args": ["rkt/net.d"]}), ""),
    "RKT401": ((rkt_dir(conf(cniVersion="0.3.1")), {"args": ["rkt/net.d"]}),
               (rkt_dir(conf(cniVersion="0.2.0")), {"args": ["rkt/net.d"]}), "/cniVersion"),
    "RKT402": ((rkt_dir("{ // comment\n}"), {"args": ["rkt/net.d"]}), (rkt_dir(conf()), {"args": ["rkt/net.d"]}), ""),
    "RKT403": ((rkt_dir(ipam(subnet=None, ranges=[[{"subnet": "10.0.0.0/24"}]])), {"args": ["rkt/net.d"]}),
               (rkt_dir(ipam(subnet="10.0.0.0/24")), {"args": ["rkt/net.d"]}), "/ipam/ranges"),
    "RKT404": ((rkt_dir(conf(type="loopback", bridge=None, isGateway=None, ipam=None)), {"args": ["rkt/net.d"]}),
               (rkt_dir(conf(type="ptp", bridge=None, isGateway=None)), {"args": ["rkt/net.d"]}), "/type"),
    "RKT405": ((rkt_dir(conf(name="default", type="ptp", bridge=None, isGateway=None)), {"args": ["rkt/net.d"]}),
               (rkt_dir(conf()), {"args": ["rkt/net.d"]}), "/name"),
    "RKT406": ((rkt_dir(conf(name="all")), {"args": ["rkt/net.d"]}), (rkt_dir(conf()), {"args": ["rkt/net.d"]}),
               "/name"),
    "RKT407": ((rkt_dir() | {"rkt/net.d/50-x.conflist": conflist(LOOPBACK)}, {"args": ["rkt/net.d"]}),
               (rkt_dir(), {"args": ["rkt/net.d"]}), ""),
    "ENV500": (({"a.conf": conf()}, {"executables": ("bridge",)}),
               ({"a.conf": conf()}, {"executables": ("bridge", "host-local")}), "/ipam/type"),
    "ENV501": (({"a.conf": conf(FLANNEL), "subnet.env": SUBNET_ENV.format(subnet="10.2.17.1/24")},
                {"args": ["a.conf"], "subnet_env": "subnet.env"}),
               ({"a.conf": conf(FLANNEL), "subnet.env": SUBNET_ENV.format(subnet="10.1.17.1/24")},
                {"args": ["a.conf"], "subnet_env": "subnet.env"}), ""),
    "K8S600": (({"pod.yaml": pod(privileged="false")}, {}), ({"pod.yaml": pod()}, {}), ""),
    "K8S601": (({"pod.yaml": pod(stage1="coreos.com/rkt/stage1-kvm:1.30.0", host="  hostNetwork: true\n")}, {}),
               ({"pod.yaml": pod(stage1="coreos.com/rkt/stage1-kvm:1.30.0")}, {}), ""),
    "K8S602": (({"pod.yaml": "kind: Pod\nmetadata: &anchor\n  name: p\n"}, {}), ({"pod.yaml": pod()}, {}), ""),
}


def test_every_rule_has_a_case():
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_failing_example_fires_the_rule(tmp_path, rule):
    (files, kwargs), _, pointer = CASES[rule]
    findings = [f for f in run(tmp_path, files, **kwargs) if f.rule == rule]
    assert findings, f"{rule} did not fire"
    if pointer is not None:
        assert pointer in {f.pointer for f in findings}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_passing_example_does_not_fire_the_rule(tmp_path, rule):
    _, (files, kwargs), _ = CASES[rule]
    assert rule not in rules(run(tmp_path, files, **kwargs))


def test_findings_carry_the_line_and_column_of_the_key(tmp_path):
    text = '{\n  "cniVersion": "0.4.0",\n  "name": "a",\n  "type": "bridge",\n    "addIf": "true"\n}\n'
    [finding] = [f for f in run(tmp_path, {"a.conf": text}) if f.rule == "CNI105"]
    assert (finding.line, finding.col) == (5, 5)
    assert '"addIf"' in finding.message and '"true"' in finding.message


def test_case_mismatch_names_the_key_the_go_decoder_uses(tmp_path):
    [finding] = [f for f in run(tmp_path, {"a.conf": conf(isgateway=True)}) if f.rule == "CNI102"]
    assert 'is read as "isGateway"' in finding.message


@pytest.mark.parametrize("key, field", [("ipMa\u017fq", "ipMasq"), ("i\u017fGateway", "isGateway")])
def test_keys_go_folds_onto_a_field_are_read_as_that_field(tmp_path, key, field):
    """Go's decoder also takes U+017F (long s) for "s" and U+212A (Kelvin) for "k"."""
    findings = run(tmp_path, {"a.conf": conf(**{key: True})})
    assert [f.rule for f in findings if f.rule in ("CNI102", "CNI105")] == ["CNI102"]
    assert f'is read as "{field}"' in next(f.message for f in findings if f.rule == "CNI102")


def test_a_go_folded_key_is_checked_against_its_fields_schema(tmp_path):
    findings = run(tmp_path, {"a.conf": conf(**{"ipMa\u017fq": "yes"})})
    assert any(f.rule == "CNI106" and "ipMa\u017fq" in f.pointer for f in findings), findings


def test_unknown_key_suggests_the_close_known_key(tmp_path):
    [finding] = [f for f in run(tmp_path, {"a.conf": conf(ipMasquerade=True)}) if f.rule == "CNI105"]
    assert 'did you mean "ipMasq"' in finding.message


def test_host_bits_message_gives_the_network_address(tmp_path):
    [finding] = [f for f in run(tmp_path, {"a.conf": ipam(subnet="10.255.228.1/24")}) if f.rule == "CNI200"]
    assert "network address is 10.255.228.0" in finding.message


def test_duplicate_name_says_which_file_wins(tmp_path):
    (files, kwargs), _, _ = CASES["CNI300"]
    [finding] = [f for f in run(tmp_path, files, **kwargs) if f.rule == "CNI300"]
    assert finding.path.endswith("20-b.conf") and "10-a.conf" in finding.message


def test_rkt_gateway_outside_subnet_is_an_error(tmp_path):
    findings = run(tmp_path, rkt_dir(ipam(gateway="10.23.0.1")), args=["rkt/net.d"])
    assert {str(f.severity) for f in findings if f.rule == "CNI205"} == {"error"}


def test_kvm_stage1_makes_unsupported_types_errors(tmp_path):
    files = rkt_dir(conf(type="loopback", bridge=None, isGateway=None, ipam=None))
    severities = {str(f.severity) for f in run(tmp_path, files, args=["rkt/net.d"], kvm=True) if f.rule == "RKT404"}
    assert severities == {"error"}


def test_rkt_keeps_the_first_file_and_ignores_conflists(tmp_path):
    files = rkt_dir(conf(), conf(bridge="br9", ipam={"type": "host-local", "subnet": "10.50.0.0/16"}))
    findings = run(tmp_path, files, args=["rkt/net.d"])
    [dup] = [f for f in findings if f.rule == "CNI300"]
    assert dup.path.endswith("11.conf") and "10.conf" in dup.message and "rkt reads first" in dup.message


def test_libcni_reads_conflists_before_confs(tmp_path):
    files = {"d/10-a.conf": conf(name="same"), "d/90-z.conflist": conflist(LOOPBACK, name="same")}
    [dup] = [f for f in run(tmp_path, files, args=["d"]) if f.rule == "CNI300"]
    assert dup.path.endswith("10-a.conf") and "90-z.conflist" in dup.message


def test_unknown_plugin_type_is_only_a_warning(tmp_path):
    findings = run(tmp_path, {"a.conf": conf(type="calico", bridge=None, isGateway=None)})
    assert {str(f.severity) for f in findings if f.rule == "CNI118"} == {"warning"}


def test_schema_dir_adds_a_third_party_type(tmp_path):
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:test:calico",
              "type": "object", "properties": {"mtu": {"type": "integer"}}}
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "calico.json").write_text(json.dumps(schema))
    text = conf(type="calico", bridge=None, isGateway=None, mtu="1500")
    findings = run(tmp_path, {"a.conf": text}, args=["a.conf"], schema_dirs=[str(tmp_path / "schemas")])
    assert "CNI118" not in rules(findings)
    assert any(f.rule == "CNI106" and f.pointer == "/mtu" for f in findings)


def test_flannel_checks_against_subnet_env(tmp_path):
    files = {"a.conf": conf(FLANNEL, delegate={"mtu": 9000, "ipMasq": True}),
             "subnet.env": SUBNET_ENV.format(subnet="10.1.17.1/24")}
    findings = [f for f in run(tmp_path, files, args=["a.conf"], subnet_env="subnet.env") if f.rule == "ENV501"]
    assert {f.pointer for f in findings} == {"/delegate/mtu", "/delegate/ipMasq"}


def test_missing_subnet_env_keys_are_reported_on_the_file(tmp_path):
    files = {"a.conf": conf(FLANNEL), "subnet.env": "FLANNEL_NETWORK=10.1.0.0/16\n"}
    findings = [f for f in run(tmp_path, files, args=["a.conf"], subnet_env="subnet.env") if f.rule == "ENV501"]
    assert len(findings) == 3 and all(f.path.endswith("subnet.env") for f in findings)


@pytest.mark.parametrize("env", [
    "FLANNEL_NETWORK=10.1.0.0/255.255.0.0\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
    " FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
])
def test_subnet_env_the_plugin_refuses_is_reported(tmp_path, env):
    """A netmask for a prefix, a key with a space before it: the flannel plugin refuses them."""
    files = {"a.conf": conf(FLANNEL), "subnet.env": env}
    findings = [f for f in run(tmp_path, files, args=["a.conf"], subnet_env="subnet.env") if f.rule == "ENV501"]
    assert [f.message.startswith("flannel fails with:") for f in findings] == [True]


def test_kvm_stage1_rejects_ipv6_subnets(tmp_path):
    files = rkt_dir(conf(type="ptp", bridge=None, isGateway=None, ipam={"type": "host-local", "subnet": "fd00:1::/64"}))
    findings = run(tmp_path, files, args=["rkt/net.d"], kvm=True)
    assert any(f.rule == "RKT404" and f.pointer == "/ipam/subnet" and "IPv4 only" in f.message for f in findings)
    assert not any(f.rule == "RKT404" for f in run(tmp_path / "plain", files, args=["rkt/net.d"]))


def test_manifest_findings_point_at_the_offending_line(tmp_path):
    [finding] = [f for f in run(tmp_path, {"pod.yaml": pod(privileged="false")}) if f.rule == "K8S600"]
    assert (finding.line, finding.col) == (12, 7)
    assert '"app"' in finding.message


def test_list_keys_are_exact_case_for_libcni(tmp_path):
    text = json.dumps({"cniVersion": "1.0.0", "Name": "n", "plugins": [LOOPBACK]})
    findings = run(tmp_path, {"a.conflist": text})
    assert {f.rule for f in findings} >= {"CNI110", "CNI105"}
    assert not any(f.rule == "CNI102" for f in findings)
    assert any('did you mean "name"' in f.message for f in findings if f.rule == "CNI105")


def test_rkt_file_rules_apply_to_files_given_one_by_one(tmp_path):
    files = {"etc/rkt/net.d/10-a.conf": '{"name": "a",}', "etc/rkt/net.d/20-b.conflist": conflist(LOOPBACK)}
    findings = run(tmp_path, files)  # as pre-commit passes them: files, not the directory
    assert {(f.rule, f.path.rsplit("/", 1)[1]) for f in findings if f.rule.startswith("RKT")} == {
        ("RKT402", "10-a.conf"), ("RKT407", "20-b.conflist")}


def test_a_shared_bridge_without_gateway_addresses_is_fine(tmp_path):
    files = {"d/10-a.conf": conf(isGateway=None),
             "d/20-b.conf": conf(name="net2", isGateway=None, ipam={"type": "host-local", "subnet": "10.23.0.0/16"})}
    assert "CNI302" not in rules(run(tmp_path, files, args=["d"]))


@pytest.mark.parametrize("changes,flagged", [
    ({"isGateway": True}, True),
    ({"isGateway": None, "isDefaultGateway": True}, True),  # implies isGateway
    ({"isGateway": True, "ipam": {}}, False),  # layer 2 only: no gateway port
    ({"isGateway": False}, False),
])
def test_vlan_gateway_port_name_length(tmp_path, changes, flagged):
    text = conf(bridge="bridge012345", vlan=1000, **changes)  # "bridge012345.1000" is 17 characters
    found = [f for f in run(tmp_path, {"a.conf": text}) if f.rule == "CNI210"]
    assert bool(found) == flagged
    if flagged:
        assert found[0].pointer == "/vlan" and '"bridge012345.1000"' in found[0].message


PTP = {"type": "ptp", "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}}


def file_for(text: str) -> dict[str, str]:
    return {"a.conflist" if '"plugins"' in text else "a.conf": text}


# Keys and values the Go plugins read and use exactly as written: the rule must stay quiet.
@pytest.mark.parametrize("text, quiet", [
    (conf(mtu=0), "CNI212"),  # bridge/ptp: 0 leaves the MTU to the kernel (netlink omits it)
    (conf(type="macvlan", bridge=None, isGateway=None, master="eth0", mtu=0), "CNI212"),  # macvlan: [0, master MTU]
    (conf(type="macvlan", bridge=None, isGateway=None, master="eth0", mac="c2:11:22:33:44:55"), "CNI105"),
    (conflist(PTP, {"type": "portmap", "capabilities": {"portMappings": True}, "masqAll": True}), "CNI105"),
], ids=["bridge-mtu-0", "macvlan-mtu-0", "macvlan-mac", "portmap-masqAll"])
def test_plugin_keys_the_plugins_read_are_not_flagged(tmp_path, text, quiet):
    assert quiet not in rules(run(tmp_path, file_for(text)))


def test_an_mtu_below_68_other_than_0_is_still_an_error(tmp_path):
    assert "CNI212" in rules(run(tmp_path, {"a.conf": conf(mtu=67)}))


def test_flannel_ipam_without_ranges_is_the_documented_base(tmp_path):
    """flannel writes subnet.env's subnets into its ipam's ranges; the rest (dataDir, routes) is kept."""
    text = conf(FLANNEL, ipam={"type": "host-local", "dataDir": "/run/cni/flannel", "routes": [{"dst": "10.9.0.0"}]})
    assert {(f.rule, f.pointer) for f in run(tmp_path, {"a.conf": text})} == {("CNI108", "/ipam/routes/0/dst")}


def test_ipv4_route_with_host_bits_is_an_error_the_kernel_refuses(tmp_path):
    [finding] = [f for f in run(tmp_path, {"a.conf": ipam(routes=[{"dst": "192.168.1.1/24"}])}) if f.rule == "CNI200"]
    assert str(finding.severity) == "error" and finding.pointer == "/ipam/routes/0/dst"
    assert "192.168.1.0/24" in finding.message and "Invalid prefix for given prefix length" in finding.message


def test_ipv6_route_with_host_bits_is_a_warning_the_kernel_masks(tmp_path):
    text = ipam(subnet="fd00:1::/64", routes=[{"dst": "fd00:2::1/48"}])
    [finding] = [f for f in run(tmp_path, {"a.conf": text}) if f.rule == "CNI200"]
    assert str(finding.severity) == "warning" and "fd00:2::/48" in finding.message
    assert "rejects" not in finding.message


@pytest.mark.parametrize("changes, pointer, said", [
    ({"vlan": 10, "vlanTrunk": [{"id": 20}]}, "/vlanTrunk", "cannot set vlan and vlanTrunk at the same time"),
    ({"vlanTrunk": [{"minID": 200, "maxID": 100}]}, "/vlanTrunk/0", "minID is greater than maxID"),
    ({"vlanTrunk": [{"minID": 5}]}, "/vlanTrunk/0", "maxID is missing"),
    ({"vlanTrunk": [{"maxID": 5}]}, "/vlanTrunk/0", "minID is missing"),
])
def test_bridge_refuses_these_vlan_trunks(tmp_path, changes, pointer, said):
    found = [f for f in run(tmp_path, {"a.conf": conf(**changes)}) if f.rule == "CNI107" and f.pointer == pointer]
    assert found and str(found[0].severity) == "error" and said in found[0].message


def test_a_trunk_of_ranges_and_single_ids_is_fine(tmp_path):
    text = conf(vlanTrunk=[{"minID": 100, "maxID": 200}, {"id": 300}, {"minID": 7, "maxID": 7}])
    assert run(tmp_path, {"a.conf": text}) == []


SHAPED = {"type": "bandwidth", "ingressRate": 8000, "ingressBurst": 800}


@pytest.mark.parametrize("subnets, rule, pointer", [
    ({"shapedSubnets": ["10.0.0.0/8"], "unshapedSubnets": ["10.1.0.0/16"]}, "CNI107", "/plugins/0/unshapedSubnets"),
    ({"unshapedSubnets": ["10.1.0.0"]}, "CNI108", "/plugins/0/unshapedSubnets/0"),
    ({"shapedSubnets": ["fd00::/64", "ten/8"]}, "CNI108", "/plugins/0/shapedSubnets/1"),
])
def test_bandwidth_refuses_these_subnet_lists(tmp_path, subnets, rule, pointer):
    found = [f for f in run(tmp_path, {"a.conflist": conflist(SHAPED | subnets)}) if f.rule == rule]
    assert [f.pointer for f in found] == [pointer] and str(found[0].severity) == "error"


def test_bandwidth_takes_either_subnet_list(tmp_path):
    for subnets in ({"shapedSubnets": ["10.0.0.0/8"]}, {"unshapedSubnets": ["10.1.0.0/16", "fd00::/64"]}):
        assert run(tmp_path, {"a.conflist": conflist(SHAPED | subnets)}) == []


def test_calico_fills_in_its_pod_cidr_magic_values(tmp_path):
    calico = {"type": "calico", "ipam": {"type": "host-local", "ranges": [[{"subnet": "usePodCidr"}],
                                                                          [{"subnet": "usePodCidrIPv6"}]]}}
    assert rules(run(tmp_path, {"a.conflist": conflist(calico)})) == {"CNI118"}  # only: no schema for calico
    bridge = {"type": "bridge", "ipam": {"type": "host-local", "subnet": "usePodCidr"}}  # nobody replaces it here
    assert "CNI104" in rules(run(tmp_path / "b", {"a.conflist": conflist(bridge)}))


def test_args_of_a_list_itself_are_its_writer_s_metadata(tmp_path):
    """libcni passes a list's name and cniVersion to its plugins, nothing else of the list (podman keeps labels there)."""
    text = conflist({"type": "loopback", "args": {"cni": {"ips": ["10.1.0.5"]}}}, args={"podman_labels": {"a": "b"}})
    assert {(f.rule, f.pointer) for f in run(tmp_path, {"a.conflist": text})} == {("CNI115", "/plugins/0/args")}


@pytest.mark.parametrize("text, pointer", [
    (conf(MTU="1500"), "/MTU"),
    (ipam(RangeStart=5), "/ipam/RangeStart"),
])
def test_a_plugin_key_in_another_case_is_still_type_checked(tmp_path, text, pointer):
    """Go decodes "MTU" into mtu, so a string there fails the ADD (cannot unmarshal string ... of type int)."""
    found = {(f.rule, str(f.severity)) for f in run(tmp_path, {"a.conf": text}) if f.pointer == pointer}
    assert found == {("CNI102", "warning"), ("CNI106", "error")}


def test_a_list_key_in_another_case_is_not_read_at_all(tmp_path):
    text = json.dumps({"cniVersion": "1.0.0", "name": "n", "DisableCheck": 5, "plugins": [LOOPBACK]})
    assert {f.rule for f in run(tmp_path, {"a.conflist": text}) if f.pointer == "/DisableCheck"} == {"CNI105"}


@pytest.mark.parametrize("key", ["IPMasq", "MTU", "IsGateway"])
def test_flannel_overrides_a_delegate_key_written_in_another_case(tmp_path, key):
    """flannel looks its defaults up by exact key, adds ipMasq/mtu/isGateway, and the delegate reads the last one."""
    [finding] = [f for f in run(tmp_path, {"a.conf": conf(FLANNEL, delegate={key: True})}) if f.rule == "CNI102"]
    assert "flannel adds its own" in finding.message and "is read as" not in finding.message


def test_a_list_below_0_3_0_is_a_warning_libcni_still_runs_it(tmp_path):
    """kube-flannel's list shipped as 0.2.0 (and the Kubernetes docs advised it): flannel + portmap chain fine."""
    text = conflist({"type": "flannel", "delegate": {"isDefaultGateway": True}},
                    {"type": "portmap", "capabilities": {"portMappings": True}}, cniVersion="0.2.0")
    findings = run(tmp_path, {"a.conflist": text})
    assert {(f.rule, str(f.severity)) for f in findings} == {("CNI113", "warning")}


def test_dhcp_route_priority_is_a_dhcp_key(tmp_path):
    text = conf(type="macvlan", bridge=None, isGateway=None, master="eth0", ipam={"type": "dhcp", "priority": 100})
    assert run(tmp_path, {"a.conf": text}) == []


@pytest.mark.parametrize("key", ["disableCheck", "disableGC", "loadOnlyInlinedPlugins"])
def test_a_list_flag_libcni_cannot_read_is_an_error_in_the_file_itself(tmp_path, key):
    bad = conflist(LOOPBACK, **{key: "yes"})
    [finding] = [f for f in run(tmp_path, {"a.conflist": bad}) if f.pointer == f"/{key}"]
    assert (finding.rule, str(finding.severity)) == ("CNI107", "error")
    assert f'invalid value "yes" for {key}' in finding.message
    assert run(tmp_path / "ok", {"a.conflist": conflist(LOOPBACK, **{key: "True"})}) == []  # any case of true/false


MACVLAN = {"cniVersion": "1.0.0", "name": "lan", "type": "macvlan", "master": "eth0", "ipam": {"type": "dhcp"}}


@pytest.mark.parametrize("mac, good", [
    ("c2:11:22:33:44:55", True), ("C2-11-22-33-44-55", True), ("c211.2233.4455", True),
    ("02:00:00:00:00:00:00:01", True),  # EUI-64
    ("zz:11:22:33:44:55", False), ("c2:11:22:33:44", False), ("c2:11-22:33:44:55", False), ("c21122334455", False),
])
def test_a_mac_go_cannot_parse_fails_macvlan_and_tuning(tmp_path, mac, good):
    """Both hand "mac" to net.ParseMAC and fail with: invalid args <mac> for MAC addr."""
    texts = {"a.conf": conf(MACVLAN, mac=mac),
             "b.conflist": conflist({"type": "ptp", "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}},
                                    {"type": "tuning", "mac": mac})}
    found = [(f.rule, f.pointer) for f in run(tmp_path, texts)]
    assert found == ([] if good else [("CNI107", "/mac"), ("CNI107", "/plugins/1/mac")])


@pytest.mark.parametrize("first, second, clash", [
    (["10.22.0.0/16"], ["10.23.0.0/16"], True),  # one IPv4 address per bridge
    (["fd00:1::/64"], ["fd00:2::/64"], False),  # IPv6 addresses coexist on the bridge
    (["10.22.0.0/16", "fd00:1::/64"], ["10.22.0.0/16", "fd00:2::/64"], False),
    (["fd00::/48"], ["fd00:0:0:1::/64"], True),  # overlapping IPv6 subnets: bridge refuses
    (["10.22.0.0/16"], ["fd00:2::/64"], False),
    (["10.22.0.0/16"], ["10.22.0.0/16 10.22.0.254"], True),  # the same subnet, another gateway
    (["10.22.0.0/16 10.22.0.1"], ["10.22.0.0/16"], False),  # the default gateway, written out
    (["fd00:1::/64"], ["fd00:1::/64 fd00:1::fe"], True),
])
def test_a_shared_bridge_clashes_as_the_plugin_s_address_rules_say(tmp_path, first, second, clash):
    def net(name, subnets):
        def range_of(text):
            subnet, *gateway = text.split()
            return {"subnet": subnet, **({"gateway": gateway[0]} if gateway else {})}
        return conf(name=name, ipam={"type": "host-local", "ranges": [[range_of(s)] for s in subnets]})
    files = {"d/10-a.conf": net("a", first), "d/20-b.conf": net("b", second)}
    assert ("CNI302" in rules(run(tmp_path, files, args=["d"]))) == clash


def test_a_bridge_address_clash_quotes_the_plugin_s_words_with_the_gateway_address(tmp_path):
    files = {"d/10-a.conf": conf(name="a", ipam={"type": "host-local", "subnet": "10.22.0.0/16"}),
             "d/20-b.conf": conf(name="b", ipam={"type": "host-local", "subnet": "10.22.0.0/16",
                                                 "gateway": "10.22.0.254"})}
    [finding] = [f for f in run(tmp_path, files, args=["d"]) if f.rule == "CNI302"]
    assert finding.message.endswith('already has an IP address different from 10.22.0.254/16')
    assert "10.22.0.1/16" in finding.message  # what network "a" puts there


@pytest.mark.parametrize("changes, pointer", [({"ipam": None}, ""), ({"ipam": {}}, "/ipam")])
def test_ptp_without_an_ipam_type_fails(tmp_path, changes, pointer):
    """ptp always execs its IPAM plugin: with no ipam.type the Go plugin fails with "no plugin name provided"."""
    text = conf(PTP | {"cniVersion": "1.0.0", "name": "p"}, **changes)
    found = [f for f in run(tmp_path, {"a.conf": text}) if f.rule == "CNI116"]
    assert [f.pointer for f in found] == [pointer] and "no plugin name provided" in found[0].message


def test_a_subnet_in_flannel_s_ipam_is_kept_beside_subnet_env_s_range(tmp_path):
    """flannel overwrites only "ranges": host-local then gets the legacy subnet as range set 0 as well."""
    text = conf(FLANNEL, ipam={"type": "host-local", "subnet": "10.244.0.0/16"})
    found = [f for f in run(tmp_path, {"a.conf": text}) if f.pointer == "/ipam/subnet"]
    assert [(f.rule, str(f.severity)) for f in found] == [("CNI107", "error")]
    assert "range set 1 overlaps with 0" in found[0].message


ROUTED = {"type": "host-local", "subnet": "10.22.0.0/16", "gateway": "192.0.2.1", "routes": [{"dst": "0.0.0.0/0"}]}


@pytest.mark.parametrize("plugin, severity", [
    ({"type": "bridge", "ipam": ROUTED}, "error"),  # Go: failed to add route ... via 192.0.2.1: network is unreachable
    ({"type": "bridge", "isDefaultGateway": True, "ipam": ROUTED | {"routes": None}}, "error"),
    ({"type": "macvlan", "master": "eth0", "ipam": ROUTED}, "error"),
    ({"type": "bridge", "ipam": ROUTED | {"routes": None}}, "warning"),  # nothing is routed via it
    ({"type": "bridge", "ipam": ROUTED | {"routes": [{"dst": "0.0.0.0/0", "gw": "10.22.0.1"}]}}, "warning"),
    ({"type": "ptp", "ipam": ROUTED}, "warning"),  # ptp adds a host route to its gateway first
    ({"type": "ipvlan", "master": "eth0", "ipam": {"type": "host-local", "subnet": "2001:db8::/64",
                                                   "gateway": "fe80::1", "routes": [{"dst": "::/0"}]}}, "warning"),
])
def test_a_gateway_outside_the_subnet_is_an_error_where_routes_go_via_it(tmp_path, plugin, severity):
    plugin = json.loads(json.dumps(plugin))
    if plugin["ipam"].get("routes", 0) is None:
        del plugin["ipam"]["routes"]
    text = json.dumps({"cniVersion": "1.0.0", "name": "n"} | plugin)
    assert {str(f.severity) for f in run(tmp_path, {"a.conf": text}) if f.rule == "CNI205"} == {severity}


def test_a_static_gateway_off_the_address_s_subnet_fails_routes_via_it(tmp_path):
    static = {"type": "static", "addresses": [{"address": "10.10.0.5/24", "gateway": "10.20.0.1"}],
              "routes": [{"dst": "0.0.0.0/0"}]}
    findings = run(tmp_path, {"a.conf": conf(MACVLAN, ipam=static)})
    assert [(f.rule, f.pointer, str(f.severity)) for f in findings] == [
        ("CNI205", "/ipam/addresses/0/gateway", "error")]
    static["addresses"][0]["gateway"] = "10.10.0.1"
    assert run(tmp_path / "ok", {"a.conf": conf(MACVLAN, ipam=static)}) == []


def test_null_is_an_absent_plugin_key_as_go_decodes_it(tmp_path):
    """encoding/json: null leaves a Go field unset, no error (Go bridge + host-local run this config)."""
    config = json.loads(conf()) | {"mtu": None, "ipMasq": None}
    config["ipam"] |= {"gateway": None, "routes": None}
    assert run(tmp_path, {"a.conf": json.dumps(config)}) == []


def test_null_list_flag_is_still_refused_by_libcni(tmp_path):
    text = json.dumps(json.loads(conflist(LOOPBACK)) | {"disableCheck": None})
    [finding] = [f for f in run(tmp_path, {"a.conflist": text}) if f.pointer == "/disableCheck"]
    assert finding.rule == "CNI106" and "null null" not in finding.message


def test_portmap_null_mark_bit_is_unset(tmp_path):
    """portmap's MarkMasqBit is a *int: null leaves it nil, so only the chain is set."""
    text = conflist({"type": "portmap", "externalSetMarkChain": "KUBE-MARK-MASQ", "markMasqBit": None})
    assert '"markMasqBit": null' in text and run(tmp_path, {"a.conflist": text}) == []


@pytest.mark.parametrize(("ipam_block", "pointer"), [
    ({"type": "host-local", "ranges": [[{"subnet": None}]]}, "/ipam/ranges/0/0/subnet"),
    ({"type": "host-local", "subnet": None, "ranges": [[{"subnet": "10.1.0.0/24"}]]}, "/ipam/subnet"),  # a template's leftover
])
def test_a_null_subnet_is_flagged_as_host_local_refuses_it(tmp_path, ipam_block, pointer):
    findings = run(tmp_path, {"a.conf": conf(ipam=ipam_block)})
    assert [(f.rule, f.pointer) for f in findings if f.rule == "CNI108"] == [("CNI108", pointer)]
