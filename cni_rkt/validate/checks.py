"""All checks of one document, in order: syntax, kind, protocol, schema, plugin parity, rkt.

Returns a NetworkSummary (name, ranges, bridges) for the directory checks.
"""

from __future__ import annotations

import json
from collections import namedtuple

from cni_rkt.validate import protocol_checks as protocol
from cni_rkt.validate.document import Document, pointer_join
from cni_rkt.validate.findings import Severity
from cni_rkt.validate.ipam_checks import (
    CALICO_POD_CIDR, PLACEHOLDER, ROUTES_VIA_GATEWAY, Range, check_ipam, families_routed_via_gateway)
from cni_rkt.validate.plugin_checks import PLUGIN_CHECKS
from cni_rkt.validate.schemas import LIST_SUBJECT, SchemaSet, check_against_schema, json_type


# How a runtime will read the file: runtime 'rkt', 'libcni' or None (no runtime-specific rules);
# kvm: pods run with rkt's KVM stage1.
Profile = namedtuple("Profile", "runtime kvm", defaults=(None, False))


class NetworkSummary:
    """What the directory checks need to know about one file's network."""

    __slots__ = ("doc", "name", "types", "ranges", "bridges")

    def __init__(self, doc: Document, name: str | None):
        self.doc = doc
        self.name = name
        self.types: list[tuple[str, str]] = []  # (pointer, type) of every plugin and IPAM
        self.ranges: list[Range] = []
        self.bridges: list[tuple[str, str]] = []  # (pointer, name) of bridges that get a gateway address


def check_document(doc: Document, schemas: SchemaSet, profile: Profile) -> NetworkSummary:
    summary = NetworkSummary(doc, None)
    if profile.runtime == "rkt":
        from cni_rkt.validate.rkt import check_rkt_file

        if not check_rkt_file(doc):
            profile = profile._replace(runtime=None)  # rkt never reads it: only the generic rules apply
    if doc.syntax_error is not None:
        error = doc.syntax_error
        doc.emit_at("CNI100", error.position.line, error.position.col, error.message)
        return summary
    for duplicate in doc.parsed.duplicates:
        doc.emit("CNI101", duplicate.pointer, f"key \"{duplicate.key}\" appears again (first at line "
                 f"{duplicate.first.line}); the Go plugins silently keep this last value", at_key=True)
    if not protocol.check_kind(doc):
        fragment = doc.value.get("ipam") if isinstance(doc.value, dict) else None
        if isinstance(fragment, dict):  # an IPAM-only snippet: its ranges can still be checked
            check_plugin_ipam(doc, schemas, profile, "", "", fragment, summary)
        return summary
    summary.name = doc.network_name
    protocol.check_name(doc)
    protocol.check_versions(doc, rkt=profile.runtime == "rkt")
    if doc.kind != "conflist":  # a list's own keys never reach a plugin: libcni passes on only name and cniVersion
        protocol.check_reserved_keys(doc, "", doc.value)
    if doc.kind == "conflist":
        protocol.check_list_flags(doc)
        check_against_schema(doc, schemas, "", doc.value, "conflist", LIST_SUBJECT,
                             skip=lambda path: len(path) >= 2 and path[0] == "plugins")
    if doc.kind == "conflist" and isinstance(doc.value["plugins"], list):
        for index, entry in enumerate(doc.value["plugins"]):
            if not isinstance(entry, dict):
                doc.emit("CNI106", f"/plugins/{index}", f"plugins[{index}] is {json_type(entry)}, expected a plugin "
                         "configuration object (libcni fails with: failed to parse plugin config)")
    for pointer, plugin in doc.plugins():
        check_plugin(doc, schemas, profile, pointer, plugin, summary)
    check_placeholders(doc, "", doc.value)
    if profile.runtime == "rkt":
        from cni_rkt.validate.rkt import check_rkt_document

        check_rkt_document(doc, profile, summary)
    return summary


def check_plugin(doc: Document, schemas: SchemaSet, profile: Profile, pointer: str, plugin: dict,
                 summary: NetworkSummary) -> None:
    if pointer:
        protocol.check_reserved_keys(doc, pointer, plugin)
    plugin_type = protocol.check_type(doc, pointer, plugin)
    if plugin_type is None:
        return
    summary.types.append((pointer_join(pointer, "type"), plugin_type))
    protocol.check_version_floor(doc, pointer, plugin_type)
    if schemas.knows(plugin_type):
        check_against_schema(doc, schemas, pointer, plugin, plugin_type, plugin_type)
    else:
        report_unknown_type(doc, pointer_join(pointer, "type"), plugin_type, "plugin")
    delegate = plugin.get("delegate") if plugin_type == "flannel" else None
    if isinstance(delegate, dict) and isinstance(delegate.get("type"), str) and not schemas.knows(delegate["type"]):
        report_unknown_type(doc, pointer_join(pointer, "delegate", "type"), delegate["type"], "delegate")
    ipam = plugin.get("ipam")
    if isinstance(ipam, dict) and ipam:
        default_route = plugin_type == "bridge" and plugin.get("isDefaultGateway") is True
        check_plugin_ipam(doc, schemas, profile, pointer, plugin_type, ipam, summary, default_route=default_route)
    if plugin_type in PLUGIN_CHECKS:
        PLUGIN_CHECKS[plugin_type](doc, pointer, plugin)
    if plugin_type == "bridge" and any(plugin.get(k) is True for k in ("isGateway", "isDefaultGateway")):
        # Only a gateway bridge gets an address, and only addresses collide between networks.
        bridge = plugin.get("bridge", "cni0")
        if isinstance(bridge, str):
            summary.bridges.append((pointer_join(pointer, "bridge"), bridge))


def check_plugin_ipam(doc: Document, schemas: SchemaSet, profile: Profile, pointer: str, plugin_type: str,
                      ipam: dict, summary: NetworkSummary, default_route: bool = False) -> None:
    ipam_pointer = pointer_join(pointer, "ipam")
    ipam_type = protocol.check_type(doc, ipam_pointer, ipam, what="IPAM plugin")
    if ipam_type is None:
        return
    summary.types.append((pointer_join(ipam_pointer, "type"), ipam_type))
    if not schemas.knows_ipam(ipam_type):
        report_unknown_type(doc, pointer_join(ipam_pointer, "type"), ipam_type, "IPAM")
    elif not schemas.knows(plugin_type) or ipam_type in schemas.extra:
        # A known plugin's schema already covered its ipam; check it directly otherwise.
        check_against_schema(doc, schemas, ipam_pointer, ipam, ipam_type, f"{ipam_type} IPAM")
    gateway_severity = Severity.ERROR if profile.runtime == "rkt" else None
    # flannel overwrites its ipam's ranges with subnet.env's subnets (ENV501 checks those).
    own_ranges = plugin_type != "flannel"
    routed = families_routed_via_gateway(ipam, default_route) if plugin_type in ROUTES_VIA_GATEWAY else frozenset()
    summary.ranges.extend(check_ipam(doc, ipam_pointer, ipam, gateway_severity=gateway_severity,
                                     own_ranges=own_ranges, routed_families=routed))


def report_unknown_type(doc: Document, pointer: str, plugin_type: str, what: str) -> None:
    doc.emit("CNI118", pointer, f"unknown {what} type \"{plugin_type}\": no schema, so its keys are not checked "
             "(add one with --schema-dir)")


def check_placeholders(doc: Document, pointer: str, value: object, in_calico: bool = False) -> None:
    if isinstance(value, dict):
        in_calico = in_calico or value.get("type") == "calico"
        for key, child in value.items():
            check_placeholders(doc, pointer_join(pointer, key), child, in_calico)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            check_placeholders(doc, pointer_join(pointer, index), child, in_calico)
    elif isinstance(value, str) and PLACEHOLDER.search(value):
        if CALICO_POD_CIDR.match(value):
            if in_calico:
                return  # the calico plugin puts the node's pod CIDR there before host-local runs
            what = "Calico's magic value, replaced by the calico plugin"
        else:
            what = "an unrendered template placeholder"
        doc.emit("CNI104", pointer, f"{json.dumps(value)} is {what}; the plugins would read it literally")
