"""`cni-rkt validate` over the real-world corpus (tests/corpus/cni-configs, origins in SOURCES.md).

The expected verdict of every file was decided by reading the file, not by recording output:
a malformed file must get CNI100 at the line where it first breaks; other files get exactly the
rules listed. Files are checked one by one here (the corpus is not one net.d); directory mode
has its own tests below.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass

import pytest

from cni_rkt.validate.config import ProjectConfig
from cni_rkt.validate.engine import Options, validate

CORPUS = os.path.join(os.path.dirname(__file__), "cni-configs")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Broken:
    """Not strict JSON: CNI100 at this line (comment, trailing comma, placeholder, missing comma, truncation)."""

    line: int


EXPECTED = {
    "calico-rkt__network-name.conf": Broken(line=6),
    "calico__10-calico.conflist.tmpl": Broken(line=11),
    "cilium__00-cilium-cni-trailing-comma.conf": Broken(line=3),
    "cilium__04-flannel-cilium-cni.conflist": {'CNI118'},
    "cilium__05-cilium-cni.conf": {'CNI118'},
    "cni__CONVENTIONS-runtimeConfig-portMappings.json": {'CNI111', 'CNI115', 'CNI118'},
    "cni__README-10-mynet.conf": set(),
    "cni__README-99-loopback.conf": set(),
    "cni__cnitool-10-myptp.conf": set(),
    "cni__spec-v0.4.0-pci-ovs-with-comments.json": Broken(line=5),
    "cni__spec-v0.4.0-wan-macvlan-with-comments.json": Broken(line=5),
    "cni__spec-v1.1-dbnet-conflist-with-comments.json": Broken(line=8),
    "cni__spec-v1.1-dbnet-plugin-bridge.json": {'CNI105'},
    "containerd__10-containerd-net.conflist": set(),
    "crio__10-crio-bridge.conflist": set(),
    "crio__11-crio-ipv4-bridge.conflist": set(),
    "crio__2017-10-ocid-bridge.conf": set(),
    "crio__2018-99-loopback-missing-name.conf": {'CNI110'},
    "crio__2020-07-11-crio-ipv4-bridge-broken.conf": Broken(line=12),
    "crio__2020-10-crio-bridge.conf": {'CNI200'},
    "crio__99-loopback.conflist": set(),
    "flannel-cni-plugin__delegate-bridge-mtu.json": {'CNI111'},
    "flannel-cni-plugin__delegate-ipvlan.json": {'CNI111'},
    "flannel-cni-plugin__delegate-win-overlay.json": {'CNI111', 'CNI118'},
    "flannel-cni-plugin__generated-delegate-bridge.json": {'CNI111'},
    "flannel__kube-flannel-2016-cni-conf.json": {'CNI111'},
    "flannel__kube-flannel-2017-10-flannel.conf": {'CNI111'},
    "flannel__kube-flannel-2017-11-10-flannel.conflist": {'CNI111'},
    "flannel__kube-flannel-2019-08-cniVersion-0.2.0-10-flannel.conflist": {'CNI113'},
    "flannel__kube-flannel-2019-10-duplicate-cniVersion-10-flannel.conflist": {'CNI101'},
    "flannel__kube-flannel-current-10-flannel.conflist": set(),
    "k3s__10-flannel.conflist": set(),
    # ipam subnet "usePodCidr" under type calico: the calico plugin fills in the node's pod CIDR (no CNI104)
    "k8s-website__network-plugins-calico-bandwidth.conflist": {'CNI118'},
    # ipam subnet "usePodCidr" under type calico: the calico plugin fills in the node's pod CIDR (no CNI104)
    "k8s-website__network-plugins-calico-portmap.conflist": {'CNI118'},
    "k8s-website__rkt-k8s_flannel_example.conf": {'CNI111'},
    "k8s-website__rkt-k8s_network_example.conf": {'CNI105', 'CNI111'},
    "k8s__rkt-gce-k8s_cluster.conf": {'CNI105', 'CNI111', 'CNI200'},
    "kind__10-kindnet.conflist.tmpl": Broken(line=12),
    "matchbox__20-metal.conf": {'CNI111'},
    "minikube__1-k8s.conflist.tmpl": {'CNI104', 'CNI105'},
    "minikube__k8s.conf": {'CNI105'},
    "multus__00-multus.conf": {'CNI111', 'CNI118'},
    "multus__daemonset-70-multus.conf": {'CNI111', 'CNI118'},
    "multus__docs-configuration-node-cni-network.conf": Broken(line=26),
    "nomad__rkt-99-network.conf": {'CNI111'},
    "plugins__bandwidth-conflist.json": {'CNI103'},
    "plugins__bridge-l2-only-empty-ipam.json": set(),
    "plugins__bridge-mynet.json": set(),
    "plugins__firewall-bridge-firewalld.json": {'CNI103', 'CNI117'},
    "plugins__host-device-no-name.json": {'CNI110', 'CNI118'},
    "plugins__host-local-legacy-v6-resolvConf.json": {'CNI116', 'CNI200'},
    "plugins__host-local-ranges-dualstack.json": {'CNI116', 'CNI200'},
    "plugins__ipvlan-host-local.json": {'CNI111'},
    "plugins__macvlan-dhcp.json": {'CNI111'},
    "plugins__portmap-options-fragment.json": {'CNI110', 'CNI111', 'CNI215'},
    "plugins__portmap-ptp-conflist.json": {'CNI103'},
    "plugins__ptp-mynet.json": {'CNI111'},
    "plugins__sbr-flannel-conflist-trailing-comma.json": Broken(line=8),
    "plugins__static-ipam-dualstack.json": {'CNI116', 'CNI200'},
    "plugins__tuning-promisc-mac-mtu.json": {'CNI111'},
    "plugins__tuning-sysctl.json": {'CNI111'},
    "plugins__vrf-macvlan-conflist-trailing-comma.json": Broken(line=14),
    "plugins__win-bridge-missing-comma.json": Broken(line=22),
    "podman-libnetwork__87-podman.conflist": set(),
    "podman-libnetwork__broken.conflist": Broken(line=25),
    "podman-libnetwork__dualstack.conflist": set(),
    "podman-libnetwork__invalid_gateway.conflist": {'CNI108'},
    "podman-libnetwork__invalidname.conflist": {'CNI110'},
    "podman-libnetwork__ipam-static.conflist": {'CNI106'},
    "podman-libnetwork__isolate.conflist": set(),
    # podman keeps its labels in the list's own "args"; libcni never passes list keys to a plugin (no CNI115)
    "podman-libnetwork__label.conflist": set(),
    "podman-libnetwork__noname.conflist": {'CNI110'},
    "podman-libnetwork__noplugin.conflist": {'CNI114'},
    "podman-libnetwork__samename1.conflist": set(),
    "podman-libnetwork__samename2.conflist": set(),
    "podman-libnetwork__vlan.conflist": set(),
    "podman__87-podman-bridge.conflist": set(),
    "rkt__10-bridge-nat.conf": {'CNI111'},
    "rkt__10-containers-rkt1.conf": {'CNI111'},
    "rkt__10-containers.conf": {'CNI111'},
    "rkt__10-loopback.conf": {'CNI111'},
    "rkt__99-default-restricted.conf": set(),
    "rkt__99-default.conf": set(),
    "rkt__containers-flannel.json": {'CNI111'},
    "rkt__ipv6-public.json": {'CNI111', 'CNI205'},
    "rkt__lan-macvlan-dhcp.json": {'CNI111'},
    "weave__10-weave.conflist.tmpl": Broken(line=8),
    "weave__2018-10-weave.conf.tmpl": Broken(line=4),
}


def corpus_files() -> list[str]:
    return sorted(name for name in os.listdir(CORPUS) if name != "SOURCES.md")


@pytest.fixture(scope="module")
def findings_by_file():
    report = validate([os.path.join(CORPUS, name) for name in corpus_files()], Options(config=ProjectConfig()))
    assert not report.unreadable
    grouped = defaultdict(list)
    for finding in report.findings:
        grouped[os.path.basename(finding.path)].append(finding)
    return grouped


def test_every_corpus_file_has_a_verdict():
    assert sorted(EXPECTED) == corpus_files()
    assert len(EXPECTED) == 88


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_verdict(findings_by_file, name):
    found = findings_by_file[name]
    expected = EXPECTED[name]
    if isinstance(expected, Broken):
        syntax = [f for f in found if f.rule == "CNI100"]
        assert [f.line for f in syntax] == [expected.line]
        assert {f.rule for f in found} == {"CNI100"}  # nothing else can be said about unparsable text
    else:
        assert {f.rule for f in found} == expected


@pytest.mark.parametrize("name", ["k8s-website__rkt-k8s_network_example.conf", "k8s-website__rkt-k8s_flannel_example.conf"])
def test_rkt_guide_files_pass_in_rkt_mode(name):
    report = validate([os.path.join(CORPUS, name)], Options(runtime="rkt", config=ProjectConfig()))
    assert not any(f.severity >= 3 for f in report.findings)  # no errors
    warnings = {(f.rule, f.pointer) for f in report.findings}
    if "network_example" in name:
        assert warnings == {("CNI105", "/addIf")}  # the guide's "addIf": "true"
    else:
        assert warnings == set()


# Valid JSON that libcni's loader still refuses, which ends its lookup as a syntax error does:
# no name, no plugins, or a .json without a top-level type (a list or a bare ipam block in a
# file libcni reads as a single plugin config).
UNLOADABLE_BY_LIBCNI = {
    "podman-libnetwork__noname.conflist", "podman-libnetwork__noplugin.conflist",
    "plugins__bandwidth-conflist.json", "plugins__firewall-bridge-firewalld.json",
    "plugins__host-local-legacy-v6-resolvConf.json", "plugins__host-local-ranges-dualstack.json",
    "plugins__portmap-ptp-conflist.json", "plugins__static-ipam-dualstack.json",
}


def test_corpus_as_one_directory_does_not_crash_and_flags_every_file_that_ends_libcni_s_lookup():
    report = validate([CORPUS], Options(config=ProjectConfig()))
    broken_read = {n for n, v in EXPECTED.items() if isinstance(v, Broken) and not n.endswith(".tmpl")}
    aborting = {os.path.basename(f.path) for f in report.findings if f.rule == "CNI304"}
    assert aborting == broken_read | UNLOADABLE_BY_LIBCNI
    assert any(f.rule == "CNI300" and f.path.endswith("crio__11-crio-ipv4-bridge.conflist") for f in report.findings)


def test_rkt_corpus_files_as_an_rkt_net_d(tmp_path):
    net_d = tmp_path / "etc" / "rkt" / "net.d"
    net_d.mkdir(parents=True)
    for name in corpus_files():
        if name.startswith("rkt__") and name.endswith(".conf"):
            shutil.copy(os.path.join(CORPUS, name), net_d / name.split("__", 1)[1])
    shutil.copy(os.path.join(CORPUS, "rkt__ipv6-public.json"), net_d / "ipv6-public.json")
    report = validate([str(net_d)], Options(config=ProjectConfig()))
    by_rule = defaultdict(set)
    for finding in report.findings:
        by_rule[finding.rule].add(os.path.basename(finding.path))
    assert by_rule["CNI300"] == {"10-containers.conf"}  # 10-containers-rkt1.conf sorts first and wins
    assert by_rule["RKT407"] == {"ipv6-public.json"}  # rkt reads only .conf
    assert by_rule["RKT400"] == {"net.d"}  # no rkt.kubernetes.io network
    assert by_rule["RKT404"] == {"10-loopback.conf"}


def test_examples_pass():
    for runtime in (None, "rkt"):
        report = validate([os.path.join(REPO, "examples", d, "net.d") for d in ("rkt", "rkt-flannel")],
                          Options(runtime=runtime, config=ProjectConfig(),
                                  subnet_env=os.path.join(REPO, "examples", "flannel", "subnet.env")))
        assert not report.unreadable
        assert [f for f in report.findings if f.severity >= 3] == []


def test_no_prefix_of_a_corpus_file_crashes_the_validator():
    """Editors save half-written files: every truncation must give findings, never an exception."""
    from cni_rkt.validate.checks import Profile, check_document
    from cni_rkt.validate.document import Document
    from cni_rkt.validate.schemas import SchemaSet

    schemas = SchemaSet()
    for name in corpus_files():
        with open(os.path.join(CORPUS, name), encoding="utf-8") as handle:
            text = handle.read()
        for end in range(0, len(text), 4):
            doc = Document.from_text(name, text[:end])
            check_document(doc, schemas, Profile(runtime="rkt"))
            if text[:end].strip() != text.strip():  # a cut file is never valid JSON
                assert any(f.rule == "CNI100" for f in doc.findings), f"{name}[:{end}]"


@pytest.mark.parametrize("text, rule", [
    ("[" * 5000, "CNI100"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": ["bridge", 5]}', "CNI106"),
    ('{"name": "n", "type": "bridge", "ipam": {"type": "host-local", "subnet": "10.0.0.0/8", "routes": 5}}', "CNI106"),
    ('{"name": "n", "type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": 1}]]}}', "CNI106"),
    ('{"name": "n", "type": "flannel", "delegate": {"type": 3}}', "CNI217"),
])
def test_hostile_shapes_give_findings_not_exceptions(tmp_path, text, rule):
    path = tmp_path / "x.conf"
    path.write_text(text)
    report = validate([str(path)], Options(config=ProjectConfig()))
    assert rule in {f.rule for f in report.findings}
