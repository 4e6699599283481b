"""rkt's view of a net.d file (rkt/rkt @171c416f, networking/podenv.go and kvm.go).

rkt passes CNI_VERSION=0.1.0, decodes only the 0.1/0.2 result shape (ip4/ip6), ships 2016-era
plugins, and its KVM stage1 drives only a few plugin types itself.
"""

from __future__ import annotations

import os

from cni_rkt.runtime.rkt_builtins import builtin_subnets
from cni_rkt.validate.document import Document, pointer_join
from cni_rkt.validate.findings import Severity
from cni_rkt.validate.protocol_checks import SPEC_VERSIONS, version_tuple
from cni_rkt.validate.checks import NetworkSummary, Profile

KUBERNETES_NETWORK = "rkt.kubernetes.io"
BUILTIN_NETWORKS = builtin_subnets()  # name -> subnet
UNSELECTABLE_NAMES = ("all", "host", "none")
KVM_TYPES = ("ptp", "bridge", "macvlan", "flannel")


def check_rkt_file(doc: Document) -> bool:
    """What rkt's loader does with the file itself, parsed or not (also for files given one by one);
    False when rkt never reads it, so rkt's other rules do not apply."""
    if doc.extension != ".conf":
        doc.emit("RKT407", "", f"rkt reads only *.conf files from its net.d; it never reads {doc.path!r}")
        return False
    if doc.syntax_error is not None:
        position = doc.syntax_error.position
        doc.emit_at("RKT402", position.line, position.col, "rkt parses every .conf before choosing networks: "
                    f"this file makes every rkt run with contained networking fail (error loading {doc.path})")
    return True


def check_rkt_document(doc: Document, profile: Profile, summary: NetworkSummary) -> None:
    check_rkt_version(doc)
    check_rkt_name(doc)
    for pointer, plugin in doc.plugins():
        check_rkt_ipam(doc, pointer, plugin)
    check_kvm_stage1(doc, profile, summary)


def check_rkt_version(doc: Document) -> None:
    version = doc.cni_version()
    if version in SPEC_VERSIONS and version_tuple(version) >= (0, 3, 0):
        doc.emit("RKT401", "/cniVersion", f"cniVersion {version} in rkt's net.d: rkt decodes only the 0.1/0.2 "
                 "result (ip4), so a plugin answering in this version leaves the pod without a recorded IP; "
                 "use \"0.2.0\" or omit cniVersion")


def check_rkt_name(doc: Document) -> None:
    name = doc.network_name
    if name in UNSELECTABLE_NAMES:
        doc.emit("RKT406", "/name", f"network name \"{name}\" is a special value of rkt's --net; this network "
                 "can never be selected")
    elif name in BUILTIN_NETWORKS:
        advice = "" if doc.value.get("type") == "ptp" else \
            "; rkt's documentation strongly recommends type \"ptp\" for it"
        doc.emit("RKT405", "/name", f"this file replaces rkt's built-in \"{name}\" network "
                 f"({BUILTIN_NETWORKS[name]}){advice}", severity=Severity.WARNING if advice else Severity.INFO)


def check_kvm_stage1(doc: Document, profile: Profile, summary: NetworkSummary) -> None:
    """Types the KVM stage1 cannot drive are info (errors with --kvm); IPv6 matters only with --kvm."""
    for pointer, plugin_type in summary.types:
        if pointer.endswith("/ipam/type") or plugin_type in KVM_TYPES:
            continue
        doc.emit("RKT404", pointer, f"type \"{plugin_type}\" cannot run under rkt's KVM stage1 (it supports only "
                 f"{', '.join(KVM_TYPES)}: \"network have unsupported type\")",
                 severity=Severity.ERROR if profile.kvm else None)
    if profile.kvm:
        for rng in summary.ranges:
            if rng.network.version == 6:
                doc.emit("RKT404", rng.pointer + "/subnet", f"subnet {rng.network} is IPv6: rkt's KVM stage1 is "
                         "IPv4 only (net-plugin returned no IPv4 configuration)", severity=Severity.ERROR)


def check_rkt_ipam(doc: Document, pointer: str, plugin: dict) -> None:
    ipam = plugin.get("ipam")
    if not isinstance(ipam, dict) or ipam.get("type") != "host-local" or "ranges" not in ipam:
        return
    if "subnet" in ipam:
        doc.emit("RKT403", pointer_join(pointer, "ipam", "ranges"), "rkt's bundled host-local ignores \"ranges\" "
                 "and uses only \"subnet\"", at_key=True)
    else:
        doc.emit("RKT403", pointer_join(pointer, "ipam", "ranges"), "rkt's bundled host-local knows only "
                 "\"subnet\": with \"ranges\" alone it fails with: missing field \"subnet\" in IPAM configuration",
                 at_key=True, severity=Severity.ERROR)


def is_rkt_path(path: str) -> bool:
    """A path inside a directory `.../rkt/net.d` (like /etc/rkt/net.d) is read by rkt."""
    parts = os.path.abspath(path).split(os.sep)
    return any(parts[i] == "rkt" and parts[i + 1] == "net.d" for i in range(len(parts) - 1))
