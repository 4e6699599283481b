"""Every rule `cni-rkt validate` knows: a stable id, a default severity and a one-line summary.

Ids never change meaning once released. Ranges: CNI1xx syntax and the CNI protocol,
CNI2xx what the plugins reject when a pod starts, CNI3xx across files of one directory,
RKT4xx rkt's loader and stage1s, ENV5xx the node's environment, K8S6xx pod manifests.
"""

from __future__ import annotations

from collections import namedtuple

from cni_rkt.validate.findings import Severity

E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO


Rule = namedtuple("Rule", "id severity summary")


_TABLE = [
    # syntax and structure
    ("CNI100", E, "the file is not strict JSON (comments, trailing commas, placeholders, truncation)"),
    ("CNI101", E, "a key appears twice in one object (the Go plugins silently keep the last one)"),
    ("CNI102", W, "a key differs from a known key only by case (the Go decoder reads it as the known key)"),
    ("CNI103", E, "the content does not match the kind its extension promises (conf vs conflist)"),
    ("CNI104", W, "a value is an unrendered template placeholder"),
    ("CNI105", W, "unknown key (the plugins ignore it)"),
    ("CNI106", E, "a value has the wrong JSON type"),
    ("CNI107", E, "a value is not allowed by the plugin's schema"),
    ("CNI108", E, "an IP address or CIDR cannot be parsed"),
    # the CNI protocol
    ("CNI110", E, "network name missing or not matching ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$"),
    ("CNI111", W, "cniVersion missing (libcni assumes 0.1.0; kubelet >= 1.16 drops such conflists)"),
    ("CNI112", E, "cniVersion / cniVersions not a supported spec version"),
    ("CNI113", W, "a configuration list with cniVersion below 0.3.0 (lists exist since 0.3.0)"),
    ("CNI114", E, "a configuration list without plugins"),
    ("CNI115", W, "a key reserved for the runtime (runtimeConfig, args, prevResult, cni.dev/*) in a file on disk"),
    ("CNI116", E, "type missing, or containing a path separator"),
    ("CNI117", E, "the plugin does not support the configuration's cniVersion"),
    ("CNI118", W, "unknown plugin type: no schema to check it against"),
    # plugin parity: what the plugins reject at ADD time
    ("CNI200", E, "a subnet has host bits set (host-local: Network has host bits set)"),
    ("CNI201", E, "rangeStart / rangeEnd outside its subnet"),
    ("CNI202", E, "rangeStart after rangeEnd"),
    ("CNI203", E, "overlapping ranges inside a range set, or overlapping range sets"),
    ("CNI204", E, "a subnet too small to allocate from (/31, /32, /127, /128)"),
    ("CNI205", W, "gateway outside its subnet"),
    ("CNI206", E, "host-local without subnet or ranges (no IP ranges specified)"),
    ("CNI207", E, "IPv4 and IPv6 ranges mixed in one range set"),
    ("CNI208", E, "more than one address per family with cniVersion below 0.3.0"),
    ("CNI210", E, "interface name over 15 characters (Linux IFNAMSIZ)"),
    ("CNI211", E, "VLAN id outside 0-4094"),
    ("CNI212", E, "MTU outside 68-65535"),
    ("CNI213", E, "hairpinMode together with promiscMode"),
    ("CNI214", E, "disableContainerInterface together with ipam"),
    ("CNI215", E, "portmap: markMasqBit together with externalSetMarkChain"),
    ("CNI216", E, "bandwidth: rate without burst or burst without rate, or burst over 4GB"),
    ("CNI217", E, "flannel delegate sets name or ipam, or a non-string type"),
    # across files
    ("CNI300", E, "two files define the same network name; only one is used"),
    ("CNI301", W, "two networks use overlapping subnets (duplicate pod addresses)"),
    ("CNI302", E, "one bridge shared by networks whose gateway addresses the plugin cannot both put on it"),
    ("CNI303", I, "a file the runtime's loader will not read"),
    ("CNI304", E, "a file the runtime cannot parse or load ends its whole network lookup"),
    # rkt
    ("RKT400", W, "no network named rkt.kubernetes.io (the kubelet's rkt runtime joins pods to it)"),
    ("RKT401", E, "cniVersion 0.3.0 or later in rkt's net.d (rkt reads only the 0.1/0.2 ip4 result)"),
    ("RKT402", E, "a malformed .conf in rkt's net.d breaks every rkt pod with contained networking"),
    ("RKT403", W, "ranges in ipam: rkt's bundled host-local knows only subnet"),
    ("RKT404", I, "a plugin type rkt's KVM stage1 cannot drive (only ptp, bridge, macvlan, flannel)"),
    ("RKT405", I, "the file overrides one of rkt's built-in networks"),
    ("RKT406", E, "a network name rkt's --net cannot select (all, host, none, or , : ; =)"),
    ("RKT407", W, "a file in rkt's net.d that rkt never reads (only *.conf)"),
    # environment
    ("ENV500", E, "a plugin type with no executable in --cni-path"),
    ("ENV501", E, "a flannel config inconsistent with flanneld's subnet.env"),
    # pod manifests
    ("K8S600", E, "a stage1-name-override pod whose containers are not privileged"),
    ("K8S601", E, "a KVM stage1 pod with hostNetwork (KVM needs rkt's contained network)"),
    ("K8S602", E, "the manifest could not be read"),
]

RULES: dict[str, Rule] = {rule_id: Rule(rule_id, severity, summary) for rule_id, severity, summary in _TABLE}
