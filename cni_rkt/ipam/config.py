"""host-local's config (the whole network config, as the reference reads it) -> IpamConfig.

Loaded once and normalised once: the legacy single range (`ipam.subnet`, `rangeStart`,
`rangeEnd`, `gateway`) is folded into `ranges`, `runtimeConfig.ipRanges` is prepended,
requested IPs are gathered from CNI_ARGS `IP=`, `args.cni.ips` and `runtimeConfig.ips`.
Every refusal is code 7 (CNI_ARGS problems are code 4) and names the key and value.
The spec's JSON spelling lives here only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode, go_quote, invalid_config
from cni_rkt.protocol.json_keys import respell_keys
from cni_rkt.ipam.ranges import (
    Address,
    RangeError,
    RangeSet,
    canonical_range,
    canonical_range_set,
    parse_cidr,
    parse_ip,
    parse_ip_maybe_prefix,
)
from cni_rkt.protocol import spec
from cni_rkt.protocol.args import parse_cni_args
from cni_rkt.protocol.invocation import NETCONF_SCHEMA
from cni_rkt.protocol.json_values import expect, expect_path, optional
from cni_rkt.protocol.result import DNS, ROUTE_INT_KEYS, ROUTE_SCHEMA, Route

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
_RANGE_KEYS = ("subnet", "rangeStart", "rangeEnd", "gateway")

# Every key host-local reads, for respell_keys (Go matches keys ignoring case).
_RANGE_SCHEMA = dict.fromkeys(_RANGE_KEYS)
CONFIG_SCHEMA = {
    **NETCONF_SCHEMA,
    "ipam": {**_RANGE_SCHEMA, "type": None, "ranges": [[_RANGE_SCHEMA]], "routes": [ROUTE_SCHEMA],
             "dataDir": None, "resolvConf": None},
    "args": {"cni": {"ips": None}},
    "runtimeConfig": {"ips": None, "ipRanges": [[_RANGE_SCHEMA]]},
}


@dataclass(frozen=True, slots=True)
class IpamConfig:
    network: str
    cni_version: str
    range_sets: tuple[RangeSet, ...]
    routes: tuple[Route, ...] = ()
    data_dir: str = DEFAULT_DATA_DIR
    resolv_conf: str = ""
    requested_ips: tuple[Address, ...] = ()


def _optional_string(obj: dict, name: str, key: str) -> str | None:
    value = obj.get(name)
    return None if value in (None, "") else expect(value, str, f"{key}.{name}")


# --- requested IPs ------------------------------------------------------------------------


def _ip_list(values: list, key: str) -> list[Address]:
    addresses = []
    for i, text in enumerate(values):
        try:
            addresses.append(parse_ip_maybe_prefix(expect(text, str, f"{key}[{i}]")))
        except ValueError as exc:
            raise invalid_config(f"{key}[{i}]: {exc}", f"{key}[{i}]") from None
    return addresses


def _cni_args_ip(cni_args: str) -> list[Address]:
    text = parse_cni_args(cni_args, {"IP"}).get("IP")
    if not text:
        return []
    try:
        return [parse_ip_maybe_prefix(text)]
    except ValueError:
        raise CNIError(
            ErrorCode.INVALID_ENVIRONMENT,
            f"ARGS: error parsing value of pair {go_quote('IP=' + text)}: invalid IP address {text}",
            "CNI_ARGS",
        ) from None


def load_requested_ips(config: dict, cni_args: str) -> tuple[Address, ...]:
    """CNI_ARGS IP=, then args.cni.ips, then runtimeConfig.ips, without repeats (as Go's map)."""
    requested = _cni_args_ip(cni_args)
    cni = optional(optional(config, "args", dict, "args"), "cni", dict, "args.cni")
    requested += _ip_list(optional(cni, "ips", list, "args.cni.ips"), "args.cni.ips")
    runtime = optional(config, "runtimeConfig", dict, "runtimeConfig")
    requested += _ip_list(optional(runtime, "ips", list, "runtimeConfig.ips"), "runtimeConfig.ips")
    return tuple(dict.fromkeys(requested))


# --- ranges -------------------------------------------------------------------------------


def _range_sources(config: dict, ipam: dict) -> list[tuple[str, list]]:
    """Each range set with the key it came from, in the reference's order."""
    sources: list[tuple[str, list]] = []
    runtime = optional(config, "runtimeConfig", dict, "runtimeConfig")
    for i, raw in enumerate(optional(runtime, "ipRanges", list, "runtimeConfig.ipRanges")):
        sources.append((f"runtimeConfig.ipRanges[{i}]", raw))
    if "subnet" in ipam:  # "" and null are an invalid subnet, as in Go, not an absent one
        sources.append(("ipam", [{k: ipam[k] for k in _RANGE_KEYS if k in ipam}]))
    for i, raw in enumerate(optional(ipam, "ranges", list, "ipam.ranges")):
        sources.append((f"ipam.ranges[{i}]", raw))
    return sources


def _load_range_set(index: int, key: str, raw) -> RangeSet:
    ranges = []
    for j, obj in enumerate(expect(raw, list, key)):
        range_key = key if key == "ipam" else f"{key}[{j}]"
        expect(obj, dict, range_key)
        subnet = obj.get("subnet")
        if subnet is not None:
            expect(subnet, str, f"{range_key}.subnet")
        elif "subnet" in obj:
            subnet = ""  # Go decodes a null subnet as "": an invalid one, not an absent one
        try:
            if subnet is None:
                raise RangeError("subnet", "subnet is required")
            ranges.append(
                canonical_range(
                    subnet,
                    _optional_string(obj, "rangeStart", range_key),
                    _optional_string(obj, "rangeEnd", range_key),
                    _optional_string(obj, "gateway", range_key),
                )
            )
        except RangeError as exc:
            raise invalid_config(f"invalid range set {index}: {exc}", f"{range_key}.{exc.key}") from None
    try:
        return canonical_range_set(ranges)
    except ValueError as exc:
        raise invalid_config(f"invalid range set {index}: {exc}", key) from None


def load_range_sets(config: dict, ipam: dict, cni_version: str) -> tuple[RangeSet, ...]:
    sources = _range_sources(config, ipam)
    if not sources:
        raise invalid_config("no IP ranges specified", "ipam.ranges")
    range_sets = [_load_range_set(i, key, raw) for i, (key, raw) in enumerate(sources)]
    families = [rs.version for rs in range_sets]
    if spec.is_legacy_result(cni_version) and (families.count(4) > 1 or families.count(6) > 1):
        raise invalid_config(
            f"CNI version {cni_version} does not support more than 1 address per family", "ipam.ranges"
        )
    for i, first in enumerate(range_sets):
        for j in range(i + 1, len(range_sets)):
            if first.overlaps(range_sets[j]):
                raise invalid_config(
                    f"range set {i} overlaps with {j}", f"{sources[i][0]} and {sources[j][0]}"
                )
    return tuple(range_sets)


# --- routes, DNS --------------------------------------------------------------------------


def _load_route(obj, key: str) -> Route:
    expect(obj, dict, key)
    dst = expect(obj.get("dst"), str, f"{key}.dst")
    try:
        ip, prefix = parse_cidr(dst)
        gw = _optional_string(obj, "gw", key)
        gw_text = str(parse_ip(gw)) if gw else ""
    except ValueError as exc:
        raise invalid_config(f"{key}: {exc}", key) from None
    extras = {}
    for name in ROUTE_INT_KEYS:
        if obj.get(name) is not None:
            extras[name] = expect(obj[name], int, f"{key}.{name}")
    return Route(dst=f"{ip}/{prefix}", gw=gw_text, **extras)


def load_routes(ipam: dict) -> tuple[Route, ...]:
    raw = optional(ipam, "routes", list, "ipam.routes")
    return tuple(_load_route(obj, f"ipam.routes[{i}]") for i, obj in enumerate(raw))


# Bytes that are not UTF-8 (surrogate-escaped on reading) become U+FFFD, one per byte, as
# Go prints them; a lone surrogate in the result JSON would be refused by strict parsers.
_NOT_UTF8 = {code: 0xFFFD for code in range(0xDC80, 0xDD00)}


def parse_resolv_conf(text: str) -> DNS:
    """nameserver / domain / search / options, as the reference reads a resolv.conf.

    Lines end at "\n" only (Go's line scanner): a lone "\r" or "\v" inside a line is
    blank space between fields, not a line break.
    """
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    domain = ""
    for line in text.translate(_NOT_UTF8).split("\n"):
        fields = line.split()
        if len(fields) < 2 or fields[0][0] in "#;":
            continue
        if fields[0] == "nameserver":
            nameservers.append(fields[1])
        elif fields[0] == "domain":
            domain = fields[1]
        elif fields[0] == "search":
            search += fields[1:]
        elif fields[0] == "options":
            options += fields[1:]
    return DNS(tuple(nameservers), domain, tuple(search), tuple(options))


def _optional_path(ipam: dict, name: str) -> str | None:
    path = ipam.get(name)
    return None if path in (None, "") else expect_path(path, f"ipam.{name}")


def load_dns(path: str) -> DNS:
    """Read `ipam.resolvConf` (only ADD needs it, so DEL works when the file is gone)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:  # "\r" kept as is
            return parse_resolv_conf(f.read())
    except OSError as exc:
        raise invalid_config(f"ipam.resolvConf {path}: {exc.strerror or exc}", "ipam.resolvConf") from None


def clean_data_dir(data_dir: str | None) -> str:
    """`ipam.dataDir` cleaned as Go's filepath.Join cleans it: "a/../b" is "b", so "a" is never created."""
    return os.path.normpath(data_dir or DEFAULT_DATA_DIR)


# --- the whole config -----------------------------------------------------------------------


def load_ipam_config(config: dict, cni_args: str = "", cni_version: str | None = None) -> IpamConfig:
    config = respell_keys(config, CONFIG_SCHEMA)
    ipam = config.get("ipam")
    if ipam is None:
        raise invalid_config("IPAM config missing 'ipam' key", "ipam")
    expect(ipam, dict, "ipam")
    version = cni_version or config.get("cniVersion") or spec.IMPLICIT_VERSION
    requested = load_requested_ips(config, cni_args)
    routes = load_routes(ipam)
    range_sets = load_range_sets(config, ipam, version)
    return IpamConfig(
        network=expect(config.get("name"), str, "name"),
        cni_version=version,
        range_sets=range_sets,
        routes=routes,
        data_dir=clean_data_dir(_optional_path(ipam, "dataDir")),
        resolv_conf=_optional_path(ipam, "resolvConf") or "",
        requested_ips=requested,
    )
