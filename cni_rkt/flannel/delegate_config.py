"""FlannelConfig + SubnetEnv -> the config handed to the delegate (pure).

Built as the reference builds it, so the same net.d file and subnet.env give the same
delegate on either implementation:

    name        the flannel network's name (`delegate` may not set it)
    type        `delegate.type`, else "bridge"
    ipMasq      `delegate.ipMasq`, else the inverse of FLANNEL_IPMASQ (if flanneld
                masquerades, the bridge must not do it again)
    mtu         `delegate.mtu`, else FLANNEL_MTU
    isGateway   for a bridge: `delegate.isGateway`, else true
    cniVersion  the flannel config's, when it has one
    runtimeConfig  the flannel config's, when it has one
    ipam        the flannel config's `ipam` (or {}), `type` defaulting to host-local,
                `ranges` replaced by the node's subnets, `routes` extended by a route to
                every flannel network (`delegate` may not set `ipam`)

`render_delegate_config` gives the bytes Go's json.Marshal would give for that map
(sorted keys, compact), so a saved file reads the same whichever plugin wrote it.
"""

from __future__ import annotations

import copy
import json
import re

from cni_rkt.errors import invalid_config
from cni_rkt.flannel.config import FlannelConfig
from cni_rkt.flannel.subnet_env import SubnetEnv
from cni_rkt.ipam.ranges import parse_cidr, parse_ip
from cni_rkt.protocol.json_keys import respell_keys
from cni_rkt.protocol.json_values import expect
from cni_rkt.protocol.result import ROUTE_INT_KEYS, ROUTE_SCHEMA

DEFAULT_DELEGATE_TYPE = "bridge"
DEFAULT_IPAM_TYPE = "host-local"


class _Struct(dict):
    """A JSON object Go marshals from a struct: fields in declared order, not sorted."""


def check_delegate(delegate: dict) -> None:
    if "type" in delegate:
        expect(delegate["type"], str, "delegate.type")
    for key in ("name", "ipam"):
        if key in delegate:
            source = "name" if key == "name" else "ipam and the node subnet"
            raise invalid_config(f'delegate must not have "{key}": flannel sets it (from the network\'s {source})',
                                 f"delegate.{key}")


def _route(index: int, route) -> _Struct:
    """One route as Go's types.Route decodes and re-encodes it (keys matched in any case)."""
    where = f"ipam.routes[{index}]"
    route = respell_keys(expect(route, dict, where), ROUTE_SCHEMA)
    dst = expect(route.get("dst"), str, f"{where}.dst")
    gw = route.get("gw")
    try:
        address, prefix = parse_cidr(dst)  # host bits kept, as types.ParseCIDR keeps them
        out = _Struct(dst=f"{address}/{prefix}")
        if gw is not None and expect(gw, str, f"{where}.gw"):  # "" is no gateway to Go
            out["gw"] = str(parse_ip(gw))
    except ValueError as exc:
        raise invalid_config(f"{where}: {exc}", where) from None
    for key in ROUTE_INT_KEYS:  # in Go's order; other keys are dropped, as Go drops them
        value = route.get(key)
        if value is not None:
            expect(value, int, f"{where}.{key}")
        if value or (value == 0 and key in ("table", "scope")):
            out[key] = value
    return out


def build_ipam(ipam: dict | None, env: SubnetEnv) -> dict:
    out = copy.deepcopy(ipam) if ipam else {}
    out.setdefault("type", DEFAULT_IPAM_TYPE)
    out["ranges"] = [[{"subnet": subnet}] for subnet in (env.subnet, env.ipv6_subnet) if subnet]
    routes = expect(out.get("routes") or [], list, "ipam.routes")
    out["routes"] = [_route(i, r) for i, r in enumerate(routes)]
    out["routes"] += [_Struct(dst=network) for network in (*env.networks, *env.ipv6_networks)]
    return out


def build_delegate_config(conf: FlannelConfig, env: SubnetEnv) -> dict:
    delegate = copy.deepcopy(conf.delegate)
    check_delegate(delegate)
    if conf.runtime_config is not None:
        delegate["runtimeConfig"] = copy.deepcopy(conf.runtime_config)
    delegate["name"] = conf.name
    delegate.setdefault("type", DEFAULT_DELEGATE_TYPE)
    delegate.setdefault("ipMasq", not env.ipmasq)
    delegate.setdefault("mtu", env.mtu)
    if delegate["type"] == "bridge":
        delegate.setdefault("isGateway", True)
    if conf.cni_version:
        delegate["cniVersion"] = conf.cni_version
    delegate["ipam"] = build_ipam(conf.ipam, env)
    return delegate


def _go_order(value):
    """`value` as Go's json.Marshal lays it out: map keys sorted, struct fields as declared."""
    if isinstance(value, _Struct):
        return value
    if isinstance(value, dict):
        return {key: _go_order(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_go_order(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)  # Go writes a whole float64 below 1e21 without ".0" (1400.0 -> 1400)
    return value


# json.Marshal escapes these even inside strings, to keep JSON safe to embed in HTML.
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
# json.loads keeps a lone surrogate escape ("\\udcff") as is; Go decodes it as U+FFFD.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def render_delegate_config(delegate: dict) -> bytes:
    text = json.dumps(_go_order(delegate), separators=(",", ":"), ensure_ascii=False)
    text = _LONE_SURROGATE.sub("\ufffd", text)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text.encode()
