"""One result model at the latest spec version, converted to any older one.

Plugins build a `Result`; `render_result` prints it in the config's version with the
reference's conversion rules, and `parse_result` reads a result (a prevResult, or a
delegate's output) of any version back into the model.

Field order and omission follow the Go types, so our bytes match the reference's.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.protocol import spec
from cni_rkt.protocol.json_keys import Whole, respell_keys
from cni_rkt.protocol.json_values import type_mismatch


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    mac: str = ""
    mtu: int = 0
    sandbox: str = ""
    socket_path: str = ""
    pci_id: str = ""


@dataclass(frozen=True, slots=True)
class IPConfig:
    address: str  # "10.22.0.2/16"
    gateway: str = ""
    interface: int | None = None  # index into Result.interfaces

    @property
    def family(self) -> int:
        return ip_family(self.address)


@dataclass(frozen=True, slots=True)
class Route:
    dst: str
    gw: str = ""
    mtu: int = 0
    advmss: int = 0
    priority: int = 0
    table: int | None = None
    scope: int | None = None


@dataclass(frozen=True, slots=True)
class DNS:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.nameservers or self.domain or self.search or self.options)


@dataclass(frozen=True, slots=True)
class Result:
    cni_version: str = spec.CURRENT_VERSION
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: DNS = field(default_factory=DNS)


def ip_family(address: str) -> int:
    """4 or 6 for an address with or without a prefix."""
    return ipaddress.ip_interface(address).version


# --- rendering ------------------------------------------------------------------------


def _dns_dict(dns: DNS) -> dict:
    out: dict = {}
    if dns.nameservers:
        out["nameservers"] = list(dns.nameservers)
    if dns.domain:
        out["domain"] = dns.domain
    if dns.search:
        out["search"] = list(dns.search)
    if dns.options:
        out["options"] = list(dns.options)
    return out


def _route_dict(route: Route, version: str) -> dict:
    out: dict = {"dst": route.dst}
    if route.gw:
        out["gw"] = route.gw
    if spec.is_v1_1(version):
        if route.mtu:
            out["mtu"] = route.mtu
        if route.advmss:
            out["advmss"] = route.advmss
        if route.priority:
            out["priority"] = route.priority
        if route.table is not None:
            out["table"] = route.table
        if route.scope is not None:
            out["scope"] = route.scope
    return out


def _interface_dict(iface: Interface, version: str) -> dict:
    out: dict = {"name": iface.name}
    if iface.mac:
        out["mac"] = iface.mac
    if iface.mtu and spec.is_v1_1(version):
        out["mtu"] = iface.mtu
    if iface.sandbox:
        out["sandbox"] = iface.sandbox
    if spec.is_v1_1(version):
        if iface.socket_path:
            out["socketPath"] = iface.socket_path
        if iface.pci_id:
            out["pciID"] = iface.pci_id
    return out


def _ip_dict(ip: IPConfig, version: str) -> dict:
    out: dict = {}
    if spec.has_ip_version_field(version):
        out["version"] = str(ip.family)
    if ip.interface is not None:
        out["interface"] = ip.interface
    out["address"] = ip.address
    if ip.gateway:
        out["gateway"] = ip.gateway
    return out


def _legacy_dict(result: Result, version: str) -> dict:
    """0.1.0/0.2.0: the first address of each family, routes nested by family."""
    out: dict = {"cniVersion": version}
    for family, key in ((4, "ip4"), (6, "ip6")):
        first = next((ip for ip in result.ips if ip.family == family), None)
        if first is None:
            continue
        block: dict = {"ip": first.address}
        if first.gateway:
            block["gateway"] = first.gateway
        routes = [_route_dict(r, version) for r in result.routes if ip_family(r.dst) == family]
        if routes:
            block["routes"] = routes
        out[key] = block
    if "ip4" not in out and "ip6" not in out:
        raise CNIError(
            ErrorCode.INCOMPATIBLE_VERSION,
            "cannot convert: no valid IP addresses",
            f"a cniVersion {version} result needs at least one IP address",
        )
    out["dns"] = _dns_dict(result.dns)
    return out


def result_to_dict(result: Result, version: str) -> dict:
    if spec.is_legacy_result(version):
        return _legacy_dict(result, version)
    out: dict = {"cniVersion": version}
    if result.interfaces:
        out["interfaces"] = [_interface_dict(i, version) for i in result.interfaces]
    if result.ips:
        out["ips"] = [_ip_dict(ip, version) for ip in result.ips]
    if result.routes:
        out["routes"] = [_route_dict(r, version) for r in result.routes]
    out["dns"] = _dns_dict(result.dns)
    return out


def render_json(obj: dict) -> bytes:
    """Go's json.MarshalIndent(obj, "", "    "): four spaces, no trailing newline."""
    return json.dumps(obj, indent=4).encode()


def render_result(result: Result, version: str) -> bytes:
    return render_json(result_to_dict(result, version))


# --- parsing --------------------------------------------------------------------------


# A route's integer fields (spec 1.1.0), in the order of Go's Route type.
ROUTE_INT_KEYS = ("mtu", "advmss", "priority", "table", "scope")
ROUTE_SCHEMA = Whole.fromkeys(("dst", "gw", *ROUTE_INT_KEYS))
DNS_SCHEMA = dict.fromkeys(("nameservers", "domain", "search", "options"))
# Every key of a result in any version: Go decodes a (prev)result into structs, so it
# reads "IPs" or "Address" as ips and address.
_RESULT_SCHEMA = {
    "cniVersion": None,
    "interfaces": [dict.fromkeys(("name", "mac", "mtu", "sandbox", "socketPath", "pciID"))],
    "ips": [dict.fromkeys(("version", "address", "gateway", "interface"))],
    "routes": [ROUTE_SCHEMA],
    "dns": DNS_SCHEMA,
    **dict.fromkeys(("ip4", "ip6"), {"ip": None, "gateway": None, "routes": [ROUTE_SCHEMA]}),
}


class _BadResult(Exception):
    """What is wrong with a result being parsed; code 6 once we know whose result it is."""


@dataclass(frozen=True, slots=True)
class _Reader:
    """How Go decodes the fields of a result of one version, read from one source.

    Fields that came with spec 1.1.0 (an interface's mtu, socketPath and pciID, a route's
    mtu, advmss, priority, table and scope) are checked in a 1.1.0 result only: in an
    older one, the reference of Debian's package ignores them (a later Go reads them),
    so one of the wrong type is left out rather than refused. A prevResult reaches Go
    through a map it encodes again, which turns 1500.0 into 1500: there whole floats are
    integers.
    """

    v1_1: bool
    whole_floats: bool

    def field(self, obj: dict, key: str, kind: type, where: str, default=None, since_1_1: bool = False):
        """obj[key] of JSON type `kind`, else the result is refused, as Go's decoder refuses
        it; `default` when absent or null."""
        value = obj.get(key)
        if value is None:
            return default
        if kind is int and self.whole_floats and isinstance(value, float) and value.is_integer():
            value = int(value)
        wrong = type_mismatch(value, kind, f"{where}.{key}")
        if not wrong:
            return value
        if since_1_1 and not self.v1_1:
            return default
        raise _BadResult(wrong)

    def route(self, obj: dict, where: str) -> Route:
        if not isinstance(obj, dict) or not isinstance(obj.get("dst"), str):
            raise _BadResult(f"route without dst: {json.dumps(obj)}")
        return Route(
            dst=obj["dst"],
            gw=self.field(obj, "gw", str, where, ""),
            mtu=self.field(obj, "mtu", int, where, 0, since_1_1=True),
            advmss=self.field(obj, "advmss", int, where, 0, since_1_1=True),
            priority=self.field(obj, "priority", int, where, 0, since_1_1=True),
            table=self.field(obj, "table", int, where, since_1_1=True),
            scope=self.field(obj, "scope", int, where, since_1_1=True),
        )

    def interface(self, obj: dict, where: str) -> Interface:
        return Interface(
            name=self.field(obj, "name", str, where, ""),
            mac=self.field(obj, "mac", str, where, ""),
            mtu=self.field(obj, "mtu", int, where, 0, since_1_1=True),
            sandbox=self.field(obj, "sandbox", str, where, ""),
            socket_path=self.field(obj, "socketPath", str, where, "", since_1_1=True),
            pci_id=self.field(obj, "pciID", str, where, "", since_1_1=True),
        )

    def dns(self, obj: dict | None) -> DNS:
        obj = obj or {}
        if not isinstance(obj, dict):
            raise _BadResult(f"dns must be a JSON object, got {json.dumps(obj)}")
        lists = {}
        for key in ("nameservers", "search", "options"):
            items = obj.get(key) or ()
            if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
                raise _BadResult(f"dns.{key} must be a list of strings, got {json.dumps(items)}")
            lists[key] = tuple(items)
        return DNS(domain=self.field(obj, "domain", str, "dns", ""), **lists)


def _check_ip(address, gateway) -> None:
    """An address as Go's decoder accepts it (a CIDR); a bad one fails here, not when printed."""
    try:
        if not isinstance(address, str) or "/" not in address or not isinstance(gateway, str):
            raise TypeError(address)
        ip_family(address)
        if gateway:
            ipaddress.ip_address(gateway)
    except (TypeError, ValueError):
        raise _BadResult(f"invalid IP address or gateway: {json.dumps(address)}, {json.dumps(gateway)}") from None


def parse_result(obj: dict, default_version: str) -> Result:
    """Read a result of any version; a missing cniVersion means `default_version`.

    Whatever a delegate printed: anything but a well-formed result is code 6.
    """
    try:
        return _parse(obj, default_version, whole_floats=False)
    except _BadResult as exc:
        raise CNIError(ErrorCode.DECODING_FAILURE, f"failed to parse result: {exc}") from None


def _parse(obj: dict, default_version: str, whole_floats: bool) -> Result:
    if not isinstance(obj, dict):
        raise _BadResult("not a JSON object")
    obj = respell_keys(obj, _RESULT_SCHEMA)
    version = obj.get("cniVersion") or default_version
    try:
        legacy = spec.is_legacy_result(version)
        read = _Reader(v1_1=spec.is_v1_1(version), whole_floats=whole_floats)
    except (AttributeError, ValueError):
        raise _BadResult(f"unknown cniVersion {json.dumps(version)}") from None
    try:
        result = _parse_fields(obj, version, legacy, read)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise _BadResult(f"{type(exc).__name__}: {exc}") from None
    for ip in result.ips:
        _check_ip(ip.address, ip.gateway)
    return result


def _objects(obj: dict, key: str, prefix: str = "") -> list[tuple[str, dict]]:
    """The entries of list `key` with where each is ("ips[1]"), each checked to be an object."""
    entries = obj.get(key) or []
    if not isinstance(entries, list):
        raise _BadResult(f"{prefix}{key} must be a list, got {json.dumps(entries)}")
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _BadResult(f"{prefix}{key}[{n}] must be a JSON object, got {json.dumps(entry)}")
    return [(f"{prefix}{key}[{n}]", entry) for n, entry in enumerate(entries)]


def _required(obj: dict, key: str, where: str):
    if key not in obj:
        raise _BadResult(f'{where} has no "{key}"')
    return obj[key]


def _parse_fields(obj: dict, version: str, legacy: bool, read: _Reader) -> Result:
    if legacy:
        ips: list[IPConfig] = []
        routes: list[Route] = []
        for key in ("ip4", "ip6"):
            block = obj.get(key)
            if not block:
                continue
            if not isinstance(block, dict):
                raise _BadResult(f"{key} must be a JSON object, got {json.dumps(block)}")
            ips.append(IPConfig(address=_required(block, "ip", key), gateway=read.field(block, "gateway", str, key, "")))
            routes.extend(read.route(r, where) for where, r in _objects(block, "routes", f"{key}."))
        return Result(version, (), tuple(ips), tuple(routes), read.dns(obj.get("dns")))
    interfaces = tuple(read.interface(i, where) for where, i in _objects(obj, "interfaces"))
    ips = []
    for where, ip in _objects(obj, "ips"):
        if spec.has_ip_version_field(version):
            read.field(ip, "version", str, where)  # not kept (the address tells), but decoded by Go
        address = _required(ip, "address", where)
        gateway = read.field(ip, "gateway", str, where, "")
        ips.append(IPConfig(address=address, gateway=gateway, interface=read.field(ip, "interface", int, where)))
    routes = tuple(read.route(r, where) for where, r in _objects(obj, "routes"))
    return Result(version, interfaces, tuple(ips), routes, read.dns(obj.get("dns")))


def prev_result(config: dict, config_version: str) -> Result | None:
    """The config's prevResult, read by its own cniVersion (the config's when it names none).

    The reference refuses one of another version than the config's (a runtime's slip, as
    libcni converts it); ours reads it, so that DEL and CHECK do not fail on the version alone.
    """
    raw = config.get("prevResult")
    if raw is None or raw == {}:
        return None
    try:
        return _parse(raw, config_version, whole_floats=True)
    except _BadResult as exc:
        raise CNIError(ErrorCode.DECODING_FAILURE, f"failed to parse prevResult: {exc}") from None
