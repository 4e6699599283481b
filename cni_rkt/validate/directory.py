"""Directory mode: model the loader that will read a net.d, then check across its files.

rkt (networking/podenv.go): only `*.conf`, sorted; every file is parsed before --net is applied,
so one malformed file breaks every pod; the first file with a name wins; user networks replace
the built-in `default` / `default-restricted`.
libcni (LoadNetworkConf): sorted `.conflist` first, then `.conf` / `.json`; the first file with a
name wins; the lookup stops at the first file it cannot parse or load (no plugins, a plugin
without type, ...).
"""

from __future__ import annotations

import ipaddress
import os
from collections import namedtuple

from cni_rkt.validate.checks import NetworkSummary, Profile, check_document
from cni_rkt.validate.document import Document
from cni_rkt.validate.findings import Finding
from cni_rkt.validate.ipam_checks import Range
from cni_rkt.validate.loader import list_directory, load_document
from cni_rkt.validate.rkt import BUILTIN_NETWORKS, KUBERNETES_NETWORK
from cni_rkt.validate.rules import RULES
from cni_rkt.validate.schemas import SchemaSet


# runtime name; read_order(file names) -> the files it reads, in order; ignored_rule(file name) ->
# the rule id for a file it skips; reads: which files it reads, in words.
LoaderModel = namedtuple("LoaderModel", "runtime read_order ignored_rule reads")


def _rkt_order(names: list[str]) -> list[str]:
    return [n for n in names if os.path.splitext(n)[1] == ".conf"]


def _libcni_order(names: list[str]) -> list[str]:
    lists = [n for n in names if os.path.splitext(n)[1] == ".conflist"]
    return lists + [n for n in names if os.path.splitext(n)[1] in (".conf", ".json")]


def _rkt_ignored(name: str) -> str:
    # A CNI file rkt skips is a likely mistake; a backup or a README is not.
    return "RKT407" if os.path.splitext(name)[1] in (".conflist", ".json") else "CNI303"


LOADERS = {
    "rkt": LoaderModel("rkt", _rkt_order, _rkt_ignored, ".conf files"),
    "libcni": LoaderModel("libcni", _libcni_order, lambda name: "CNI303", ".conflist, .conf and .json files"),
}


def check_directory(directory: str, schemas: SchemaSet, profile: Profile,
                    unreadable: list[tuple[str, str]]) -> tuple[list[Document], list[Finding]]:
    """Check every file the runtime would read; returns the documents and the directory's own findings."""
    model = LOADERS[profile.runtime or "libcni"]
    names = list_directory(directory)
    read = model.read_order(names)
    extra: list[Finding] = []
    for name in names:
        if name not in read:
            extra.append(directory_finding(os.path.join(directory, name), model.ignored_rule(name),
                                           f"{model.runtime} does not read {name!r} (it reads only {model.reads} "
                                           "directly in the directory)"))
    docs, summaries = [], []
    for position, name in enumerate(read):
        path = os.path.join(directory, name)
        try:
            doc = load_document(path)
        except OSError as exc:
            unreadable.append((path, exc.strerror or str(exc)))
            continue
        docs.append(doc)
        summaries.append(check_document(doc, schemas, profile))
        if model.runtime == "libcni":
            report_aborted_lookup(doc, read[position + 1:])  # rkt's equivalent (RKT402) is a per-file rule
    check_names(summaries, model.runtime)
    check_overlaps(summaries, profile)
    check_bridges(summaries)
    if model.runtime == "rkt" and not any(s.name == KUBERNETES_NETWORK for s in summaries):
        extra.append(directory_finding(directory, "RKT400", f"no network named \"{KUBERNETES_NETWORK}\" in "
                                       "this rkt net.d: the kubelet's rkt runtime joins every pod to it"))
    return docs, extra


def directory_finding(path: str, rule: str, message: str) -> Finding:
    return Finding(path, "", 1, 1, RULES[rule].severity, rule, message)


def report_aborted_lookup(doc: Document, later_files: list[str]) -> None:
    """CNI304 on a file libcni cannot parse or load (as `cni-rkt exec` reads it, runtime/netconf.py),
    naming the files whose networks the stop hides, so an operator sees what breaks."""
    from cni_rkt.runtime.netconf import libcni_load_error

    consequence = f"no network in it{_and_the_files(later_files)} can be found"
    if doc.syntax_error is not None:
        position = doc.syntax_error.position
        doc.emit_at("CNI304", position.line, position.col,
                    f"libcni stops its lookup at the first file it cannot parse: {consequence}")
        return
    error = libcni_load_error(doc.path, doc.value)
    if error is not None:
        reason = error.msg.removeprefix(f"{doc.path}: ")
        doc.emit("CNI304", "", f"libcni stops its lookup at the first file it cannot load ({reason}): {consequence}")


def _and_the_files(names: list[str], shown: int = 3) -> str:
    if not names:
        return ""
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return f" or in the {len(names)} file{'s' if len(names) > 1 else ''} read after it ({listed})"


def check_names(summaries: list[NetworkSummary], runtime: str) -> None:
    first: dict[str, NetworkSummary] = {}
    for summary in summaries:
        if summary.name is None:
            continue
        if summary.name in first:
            winner = os.path.basename(first[summary.name].doc.path)
            summary.doc.emit("CNI300", "/name", f"network \"{summary.name}\" is already defined in {winner}, which "
                             f"{runtime} reads first; this file is ignored")
        else:
            first[summary.name] = summary


def check_overlaps(summaries: list[NetworkSummary], profile: Profile) -> None:
    seen: list[tuple[str, Range, str]] = []  # (network name, range, file)
    names = {s.name for s in summaries}
    if profile.runtime == "rkt":
        for builtin, subnet in BUILTIN_NETWORKS.items():
            if builtin not in names:
                network = ipaddress.ip_network(subnet)
                seen.append((builtin, Range("", network, network[1], network[-2], network[1]), "rkt's built-in networks"))
    used_names = set()
    for summary in summaries:
        if summary.name in used_names:
            continue  # a shadowed duplicate is never used: CNI300 says so
        used_names.add(summary.name)
        for rng in summary.ranges:
            for name, other, where in seen:
                if name != summary.name and rng.network.overlaps(other.network):
                    summary.doc.emit("CNI301", rng.pointer + "/subnet" if rng.pointer else "",
                                     f"subnet {rng.network} overlaps {other.network} of network \"{name}\" "
                                     f"({where}): pods of both networks can get the same address")
        seen.extend((summary.name, rng, os.path.basename(summary.doc.path)) for rng in summary.ranges)


def check_bridges(summaries: list[NetworkSummary]) -> None:
    owners: dict[str, NetworkSummary] = {}
    for summary in summaries:
        for pointer, bridge in summary.bridges:
            owner = owners.get(bridge)
            if owner is None:
                owners[bridge] = summary
                continue
            if owner.name != summary.name and gateway_addresses_clash(summary.ranges, owner.ranges):
                theirs, mine = (", ".join(sorted(map(str, gateway_addresses(s.ranges)))) for s in (owner, summary))
                summary.doc.emit("CNI302", pointer, f"bridge \"{bridge}\" is also used by network \"{owner.name}\" "
                                 f"({os.path.basename(owner.doc.path)}), whose pods give it the address(es) {theirs}; "
                                 f"bridge fails with: \"{bridge}\" already has an IP address different from {mine}")


def gateway_addresses_clash(mine: list[Range], theirs: list[Range]) -> bool:
    """bridge's ensureAddr: the bridge gets each gateway with its subnet's prefix; it holds one
    IPv4 address, and IPv6 ones coexist unless they overlap."""
    mine_v4, theirs_v4 = ({a for a in gateway_addresses(ranges) if a.version == 4} for ranges in (mine, theirs))
    if mine_v4 and theirs_v4 and mine_v4 != theirs_v4:
        return True
    return any(a != b and a.network.overlaps(b.network)
               for a in gateway_addresses(mine) for b in gateway_addresses(theirs) if a.version == b.version == 6)


def gateway_addresses(ranges: list[Range]) -> set:
    return {ipaddress.ip_interface(f"{r.gateway}/{r.network.prefixlen}") for r in ranges}
