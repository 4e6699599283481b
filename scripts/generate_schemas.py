#!/usr/bin/env python3
"""Write the JSON Schemas in cni_rkt/validate/schemas/ from the tables below.

The .json files are the product (editors and `cni-rkt validate` read them); this script keeps
the keys every plugin shares in one place. Run it after changing a table; a unit test fails
when the files and this script disagree.
"""

from __future__ import annotations

import json
import pathlib
import sys

BASE = "https://cni-rkt.example/schemas/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
OUT = pathlib.Path(__file__).resolve().parent.parent / "cni_rkt" / "validate" / "schemas"

STRING = {"type": "string"}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
STRINGS = {"type": "array", "items": STRING}
# 0 (the Go zero value) means "not set": netlink then leaves the MTU to the kernel; macvlan
# documents [0, master MTU]. Anything else must be a real link MTU.
MTU = {"type": "integer", "if": {"not": {"const": 0}}, "then": {"minimum": 68, "maximum": 65535},
       "description": "interface MTU in bytes; 0 or absent: the kernel's default"}
IPMASQ_BACKEND = {"enum": ["iptables", "nftables"]}


def common(name: str) -> dict:
    return {"$ref": f"cni-common.json#/$defs/{name}"}


# Keys the CNI spec defines for every plugin configuration (network config or list entry).
NETCONF_KEYS = {
    "cniVersion": common("cniVersion"),
    "cniVersions": {"type": "array", "items": common("cniVersion")},
    "name": common("name"),
    "type": common("type"),
    "ipam": {"$ref": "ipam.json"},
    "dns": common("dns"),
    "capabilities": {"type": "object", "additionalProperties": BOOL},
    "runtimeConfig": {"type": "object"},
    "args": {"type": "object"},
    "prevResult": {"type": "object"},
}

PLUGINS = {
    "bridge": ("Linux bridge with a veth pair per pod (containernetworking/plugins bridge)", {
        "bridge": {"type": "string", "description": "bridge name, default cni0; at most 15 characters"},
        "isGateway": BOOL, "isDefaultGateway": BOOL, "forceAddress": BOOL,
        "ipMasq": BOOL, "ipMasqBackend": IPMASQ_BACKEND, "mtu": MTU,
        "hairpinMode": BOOL, "promiscMode": BOOL,
        "vlan": {"type": "integer", "minimum": 0, "maximum": 4094},
        "vlanTrunk": {"type": "array", "items": {"type": "object", "additionalProperties": False, "properties": {
            "minID": {"type": "integer", "minimum": 1, "maximum": 4094},
            "maxID": {"type": "integer", "minimum": 1, "maximum": 4094},
            "id": {"type": "integer", "minimum": 1, "maximum": 4094}}}},
        "preserveDefaultVlan": BOOL, "macspoofchk": BOOL, "enabledad": BOOL,
        "disableContainerInterface": BOOL, "portIsolation": BOOL,
    }),
    "ptp": ("point-to-point veth pair with host routes (containernetworking/plugins ptp)", {
        "ipMasq": BOOL, "ipMasqBackend": IPMASQ_BACKEND, "mtu": MTU,
    }),
    "macvlan": ("macvlan sub-interface of a host interface", {
        "master": STRING, "mode": {"enum": ["", "bridge", "private", "vepa", "passthru"]},
        "mtu": MTU, "mac": STRING, "linkInContainer": BOOL,
    }),
    "ipvlan": ("ipvlan sub-interface of a host interface", {
        "master": STRING, "mode": {"enum": ["", "l2", "l3", "l3s"]}, "mtu": MTU, "linkInContainer": BOOL,
    }),
    "loopback": ("brings up the pod's lo interface", {}),
    "portmap": ("host port forwarding (chained, needs prevResult)", {
        "snat": BOOL, "masqAll": BOOL, "markMasqBit": {"type": "integer", "minimum": 0, "maximum": 31},
        "externalSetMarkChain": STRING, "conditionsV4": STRINGS, "conditionsV6": STRINGS,
        "backend": IPMASQ_BACKEND,
    }),
    "tuning": ("sysctls and link attributes of the pod interface (chained)", {
        "mac": STRING, "mtu": MTU, "promisc": BOOL, "allmulti": BOOL, "txQLen": {"type": "integer", "minimum": 0},
        "sysctl": {"type": "object", "additionalProperties": STRING,
                   "description": "net.* sysctl names to values; values are strings"},
        "dataDir": STRING,
    }),
    "bandwidth": ("traffic shaping with tbf (chained; cniVersion 0.3.0 or later)", {
        "ingressRate": {"type": "integer", "minimum": 0}, "ingressBurst": {"type": "integer", "minimum": 0},
        "egressRate": {"type": "integer", "minimum": 0}, "egressBurst": {"type": "integer", "minimum": 0},
        "shapedSubnets": STRINGS, "unshapedSubnets": STRINGS,
    }),
    "firewall": ("firewall rules for the pod's addresses (chained; cniVersion 0.4.0 or later)", {
        "backend": {"enum": ["", "iptables", "firewalld"]}, "firewalldZone": STRING,
        "iptablesAdminChainName": STRING, "ingressPolicy": {"enum": ["", "open", "isolated", "same-bridge"]},
    }),
    "flannel": ("flannel: reads flanneld's subnet.env and delegates to bridge (flannel-io/cni-plugin)", {
        "subnetFile": STRING, "dataDir": STRING, "delegate": {"$ref": "flannel-delegate.json"},
    }),
}

IPAM_PLUGINS = {
    "host-local": ("host-local IPAM: addresses from local ranges, leases in /var/lib/cni/networks", {
        "type": {"const": "host-local"},
        "subnet": common("cidr"), "rangeStart": common("ip"), "rangeEnd": common("ip"), "gateway": common("ip"),
        "ranges": {"type": "array", "items": {"type": "array", "items": {"$ref": "#/$defs/range"}}},
        "routes": {"type": "array", "items": common("route")},
        "dataDir": STRING, "resolvConf": STRING,
    }, {"range": {"type": "object", "additionalProperties": False, "required": ["subnet"], "properties": {
        "subnet": common("cidr"), "rangeStart": common("ip"), "rangeEnd": common("ip"), "gateway": common("ip")}}}),
    "static": ("static IPAM: fixed addresses", {
        "type": {"const": "static"},
        "addresses": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                                  "required": ["address"], "properties": {
                                                      "address": common("cidr"), "gateway": common("ip")}}},
        "routes": {"type": "array", "items": common("route")}, "dns": common("dns"),
    }, {}),
    "dhcp": ("dhcp IPAM: leases from a DHCP server through the dhcp daemon", {
        "type": {"const": "dhcp"}, "daemonSocketPath": STRING, "timeout": INT, "priority": INT,
        "request": {"type": "array", "items": {"type": "object"}},
        "provide": {"type": "array", "items": {"type": "object"}},
    }, {}),
}

COMMON_DEFS = {
    "cniVersion": {"type": "string", "description": "CNI spec version: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"},
    "name": {"type": "string", "description": "network name: ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$"},
    "type": {"type": "string", "description": "plugin executable name, without a path"},
    "ip": {"type": "string", "description": "an IPv4 or IPv6 address"},
    "cidr": {"type": "string", "description": "an address with prefix length, e.g. 10.22.0.0/16"},
    "route": {"type": "object", "additionalProperties": False, "required": ["dst"], "properties": {
        "dst": {"$ref": "#/$defs/cidr"}, "gw": {"$ref": "#/$defs/ip"},
        "mtu": INT, "advmss": INT, "priority": INT, "table": INT, "scope": INT}},
    "dns": {"type": "object", "additionalProperties": False, "properties": {
        "nameservers": STRINGS, "domain": STRING, "search": STRINGS, "options": STRINGS}},
}


def document(name: str, title: str, body: dict) -> dict:
    return {"$schema": DRAFT, "$id": BASE + name + ".json", "title": title, **body}


def plugin_schema(name: str, title: str, keys: dict) -> dict:
    properties = dict(NETCONF_KEYS)
    properties.update(keys)
    return document(name, title, {"type": "object", "properties": properties, "additionalProperties": False})


def dispatch(by_type: dict[str, str], base: dict) -> dict:
    """`type` selects the schema: if/then per known type, anything else only needs a string type."""
    return {**base, "allOf": [
        {"if": {"required": ["type"], "properties": {"type": {"const": t}}}, "then": {"$ref": ref}}
        for t, ref in by_type.items()]}


def build() -> dict[str, dict]:
    out = {"cni-common": document("cni-common", "definitions shared by the CNI schemas",
                                  {"$defs": COMMON_DEFS})}
    for name, (title, keys) in PLUGINS.items():
        out[name] = plugin_schema(name, title, keys)
    for name, (title, keys, defs) in IPAM_PLUGINS.items():
        body = {"type": "object", "required": ["type"], "properties": keys, "additionalProperties": False}
        if defs:
            body["$defs"] = defs
        out[name] = document(name, title, body)
    out["ipam"] = document("ipam", "the ipam object of a plugin configuration, by its type", dispatch(
        {t: f"{t}.json" for t in IPAM_PLUGINS}, {"type": "object", "properties": {"type": common("type")}}))
    plugin_refs = {t: f"{t}.json" for t in PLUGINS}
    out["plugin"] = document("plugin", "one plugin configuration, checked by its type", dispatch(
        plugin_refs, {"type": "object", "required": ["type"], "properties": {"type": common("type")}}))
    delegate = dispatch(plugin_refs, {"type": "object", "properties": {"type": common("type")}})
    delegate["allOf"].insert(0, {"if": {"not": {"required": ["type"]}}, "then": {"$ref": "bridge.json"}})
    out["flannel-delegate"] = document(
        "flannel-delegate", "flannel's delegate: a plugin configuration (bridge unless type says otherwise)", delegate)
    out["network-config"] = document("network-config", "a CNI network configuration file (.conf / .json)", {
        "allOf": [{"$ref": "plugin.json"}], "required": ["name", "type"]})
    out["conflist"] = document("conflist", "a CNI network configuration list (.conflist)", {
        "type": "object", "required": ["name", "plugins"], "additionalProperties": False, "properties": {
            "cniVersion": common("cniVersion"), "cniVersions": {"type": "array", "items": common("cniVersion")},
            "name": common("name"), "disableCheck": {"type": ["boolean", "string"]},
            "disableGC": {"type": ["boolean", "string"]}, "loadOnlyInlinedPlugins": {"type": ["boolean", "string"]},
            "args": {"type": "object"}, "runtimeConfig": {"type": "object"},
            "plugins": {"type": "array", "minItems": 1, "items": {"$ref": "plugin.json"}}}})
    out["validate-report"] = document("validate-report", "the output of cni-rkt validate --format json", REPORT)
    return out


RULE_ID = {"type": "string", "pattern": "^(CNI|RKT|ENV|K8S)[0-9]{3}$"}
REPORT = {
    "type": "object", "additionalProperties": False,
    "required": ["version", "tool", "files", "unreadable", "summary", "findings"],
    "properties": {
        "version": {"const": 1},
        "tool": {"type": "object", "additionalProperties": False, "required": ["name", "version"],
                 "properties": {"name": STRING, "version": STRING}},
        "files": STRINGS,
        "unreadable": STRINGS,
        "summary": {"type": "object", "additionalProperties": False, "required": ["error", "warning", "info"],
                    "properties": {k: {"type": "integer", "minimum": 0} for k in ("error", "warning", "info")}},
        "findings": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["path", "pointer", "line", "col", "severity", "rule", "message"],
            "properties": {
                "path": STRING,
                "pointer": {"type": "string", "pattern": "^(/.*)?$", "description": "JSON pointer into the file"},
                "line": {"type": "integer", "minimum": 1}, "col": {"type": "integer", "minimum": 1},
                "severity": {"enum": ["error", "warning", "info"]}, "rule": RULE_ID, "message": STRING}}},
    },
}


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, schema in build().items():
        (OUT / f"{name}.json").write_text(render(schema))
    return 0


if __name__ == "__main__":
    sys.exit(main())
