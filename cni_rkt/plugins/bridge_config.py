"""The bridge plugin's network config: every key of the reference, its default and its rules.

`load_config(inv)` is pure: JSON object + CNI_ARGS -> a frozen `BridgeConfig`, or a
CNIError (code 7) naming the key and the value. Keys we do not know, such as the old
guide's `"addIf": "true"`, are ignored as the reference ignores them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.protocol import spec
from cni_rkt.protocol.args import parse_cni_args
from cni_rkt.protocol.invocation import NETCONF_SCHEMA
from cni_rkt.protocol.json_keys import respell_keys
from cni_rkt.protocol.json_values import optional
from cni_rkt.protocol.mac import parse_go_mac
from cni_rkt.protocol.result import DNS

DEFAULT_BRIDGE = "cni0"
MIN_MTU, MAX_MTU = 68, 65535
MAX_VLAN = 4094
MASQ_BACKENDS = ("iptables", "nftables")
# CNI_ARGS keys the bridge reads (MAC) or lets through to IPAM (IP).
_CNI_ARGS_KEYS = frozenset({"MAC", "IP"})
_BOOL_KEYS = {
    "isGateway": "is_gateway",
    "isDefaultGateway": "is_default_gateway",
    "forceAddress": "force_address",
    "ipMasq": "ip_masq",
    "hairpinMode": "hairpin_mode",
    "promiscMode": "promisc_mode",
    "enabledad": "enable_dad",
    "macspoofchk": "mac_spoof_check",
    "disableContainerInterface": "disable_container_interface",
    "portIsolation": "port_isolation",
}

# Every key the bridge reads, for respell_keys: Go's decoder matches them ignoring case
# ("MTU", "ipmasq"), so the same file configures the same bridge with either plugin.
CONFIG_SCHEMA = {
    **NETCONF_SCHEMA,
    **dict.fromkeys(("bridge", "ipMasqBackend", "mtu", "vlan", "preserveDefaultVlan", *_BOOL_KEYS)),
    "vlanTrunk": [dict.fromkeys(("minID", "maxID", "id"))],
    "args": {"cni": {"mac": None}},
    "runtimeConfig": {"mac": None},
}


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    network: str
    cni_version: str
    bridge: str = DEFAULT_BRIDGE
    is_gateway: bool = False  # also true when is_default_gateway
    is_default_gateway: bool = False
    force_address: bool = False
    ip_masq: bool = False
    ip_masq_backend: str | None = None
    mtu: int = 0  # 0: the kernel's default
    hairpin_mode: bool = False
    promisc_mode: bool = False
    vlan: int = 0
    vlan_trunk: tuple[int, ...] = ()
    preserve_default_vlan: bool = True  # the reference's default
    enable_dad: bool = False
    mac_spoof_check: bool = False
    disable_container_interface: bool = False
    port_isolation: bool = False
    ipam_type: str = ""  # "" means layer 2 only
    mac: str = ""  # for the container end
    dns: DNS | None = None  # set: replaces IPAM's DNS

    @property
    def is_layer3(self) -> bool:
        return bool(self.ipam_type)

    @property
    def uses_vlans(self) -> bool:
        return bool(self.vlan or self.vlan_trunk)

    @property
    def vlan_gateway_port(self) -> str:
        """Where the gateway address goes when the pods are on a VLAN: a veth end named
        `<bridge>.<vlan>` whose peer is an untagged port of that VLAN ("" without one)."""
        if not (self.vlan and self.is_gateway and self.is_layer3):
            return ""
        return f"{self.bridge}.{self.vlan}"


def _show(value: object) -> str:
    """The value as JSON, non-ASCII characters as themselves unless they are not text."""
    shown = json.dumps(value, ensure_ascii=False)
    try:
        shown.encode()
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        return json.dumps(value)
    return shown


def _bad(key: str, value: object, why: str) -> CNIError:
    return CNIError(ErrorCode.INVALID_NETWORK_CONFIG, f"invalid {key} {_show(value)}: {why}", key)


def _conflict(msg: str, key: str) -> CNIError:
    return CNIError(ErrorCode.INVALID_NETWORK_CONFIG, msg, key)


def _int(config: dict, key: str, default: int = 0) -> int:
    value = config.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, value, "must be an integer")
    return value


def _bool(config: dict, key: str) -> bool:
    value = config.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(key, value, "must be true or false")
    return value


def _bridge_name(config: dict) -> str:
    name = config.get("bridge", DEFAULT_BRIDGE)
    if name is None:
        return DEFAULT_BRIDGE
    if not isinstance(name, str) or not name:
        raise _bad("bridge", name, "must be a non-empty interface name")
    try:
        size = spec.ifname_size(name)
    except UnicodeEncodeError:
        raise _bad("bridge", name, "an interface name must be valid Unicode text") from None
    if size > spec.MAX_IFNAME_LENGTH:
        raise _bad("bridge", name, f"an interface name has at most {spec.MAX_IFNAME_LENGTH} bytes")
    if name in (".", "..") or any(c in "/:%\0" or spec.go_is_space(c) for c in name):
        # the kernel would take a % as a name template: br%d becomes br0
        raise _bad("bridge", name, "an interface name may not be . or .. or contain /, :, %, NUL or whitespace")
    return name


def _mtu(config: dict) -> int:
    mtu = _int(config, "mtu")
    if mtu and not MIN_MTU <= mtu <= MAX_MTU:
        raise _bad("mtu", mtu, f"must be between {MIN_MTU} and {MAX_MTU} (or 0 for the kernel default)")
    return mtu


def _vlan(config: dict) -> int:
    vlan = _int(config, "vlan")
    if not 0 <= vlan <= MAX_VLAN:
        raise _bad("vlan", vlan, f"must be between 0 and {MAX_VLAN}")
    return vlan


def _trunk_id(item: dict, field: str) -> int:
    value = item[field]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VLAN:
        raise _bad(f"vlanTrunk.{field}", value, f"must be between 1 and {MAX_VLAN}")
    return value


def _vlan_trunk(config: dict) -> tuple[int, ...]:
    """Every VLAN id named by the trunk's `{id}` and `{minID, maxID}` entries, sorted."""
    trunk = config.get("vlanTrunk")
    if trunk is None:
        return ()
    if not isinstance(trunk, list):
        raise _bad("vlanTrunk", trunk, "must be a list of {id} or {minID, maxID} objects")
    vids: set[int] = set()
    for item in trunk:
        if not isinstance(item, dict):
            raise _bad("vlanTrunk", item, "each entry must be an object")
        has_min, has_max = item.get("minID") is not None, item.get("maxID") is not None
        if has_min != has_max:
            missing = "maxID" if has_min else "minID"
            raise _bad("vlanTrunk", item, f"minID and maxID go together, {missing} is missing")
        if has_min:
            low, high = _trunk_id(item, "minID"), _trunk_id(item, "maxID")
            if low > high:
                raise _bad("vlanTrunk", item, "minID is greater than maxID")
            vids.update(range(low, high + 1))
        if item.get("id") is not None:
            vids.add(_trunk_id(item, "id"))
    return tuple(sorted(vids))


def _ipam_type(config: dict) -> str:
    ipam = config.get("ipam")
    if ipam is None:
        return ""
    if not isinstance(ipam, dict):
        raise _bad("ipam", ipam, "must be an object")
    kind = ipam.get("type", "")
    if kind is None:
        return ""
    if not isinstance(kind, str):
        raise _bad("ipam.type", kind, "must be a plugin name")
    return kind


def _mac_source(value: object, source: str) -> str:
    """One source's MAC as given ("" when unset). Another type is refused: Go cannot
    decode it, and its MAC would be silently lost."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(source, value, "must be a MAC address like 02:42:ac:11:00:02")
    return value


def _container_mac(config: dict, cni_args: str) -> str:
    """CNI_ARGS MAC=, then args.cni.mac, then runtimeConfig.mac: the last one set wins.
    As in Go, only the winner is read as an address, in any form net.ParseMAC takes
    (02-42-ac-11-00-02, 0242.ac11.0002); it is returned as 02:42:ac:11:00:02."""
    cni = optional(optional(config, "args", dict, "args"), "cni", dict, "args.cni")
    runtime = optional(config, "runtimeConfig", dict, "runtimeConfig")
    sources = (
        ("CNI_ARGS MAC", parse_cni_args(cni_args, _CNI_ARGS_KEYS).get("MAC")),
        ("args.cni.mac", cni.get("mac")),
        ("runtimeConfig.mac", runtime.get("mac")),
    )
    mac, winner = "", ""
    for source, value in sources:
        if _mac_source(value, source):
            mac, winner = value, source
    if not mac:
        return ""
    raw = parse_go_mac(mac)
    if raw is None or len(raw) != 6:  # Go parses longer ones, then the kernel refuses them
        raise _bad(winner, mac, "must be a MAC address like 02:42:ac:11:00:02")
    return raw.hex(":")


def _dns(config: dict) -> DNS | None:
    """The config's `dns`, when it sets anything (then it replaces what IPAM returned)."""
    raw = config.get("dns")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _bad("dns", raw, "must be an object")
    lists = {}
    for key in ("nameservers", "search", "options"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise _bad(f"dns.{key}", value, "must be a list of strings")
        lists[key] = value
    domain = raw.get("domain") or ""
    if not isinstance(domain, str):
        raise _bad("dns.domain", domain, "must be a string")
    if all(v is None for v in lists.values()) and not domain:
        return None
    return DNS(
        nameservers=tuple(lists["nameservers"] or ()),
        domain=domain,
        search=tuple(lists["search"] or ()),
        options=tuple(lists["options"] or ()),
    )


def _masq_backend(config: dict) -> str | None:
    backend = config.get("ipMasqBackend")
    if backend in (None, ""):
        return None
    if backend not in MASQ_BACKENDS:
        raise _bad("ipMasqBackend", backend, f"must be one of {', '.join(MASQ_BACKENDS)}")
    return backend


def _check_conflicts(conf: BridgeConfig) -> None:
    if conf.hairpin_mode and conf.promisc_mode:
        raise _conflict("cannot set hairpin mode and promiscuous mode at the same time", "hairpinMode")
    if conf.vlan and conf.vlan_trunk:
        raise _conflict("cannot set vlan and vlanTrunk at the same time", "vlanTrunk")
    if conf.disable_container_interface and conf.is_layer3:
        raise _conflict(
            f"cannot use IPAM (ipam.type {json.dumps(conf.ipam_type)}) when disableContainerInterface is set", "ipam"
        )
    if spec.ifname_size(conf.vlan_gateway_port) > spec.MAX_IFNAME_LENGTH:
        raise _conflict(
            f"isGateway with vlan {conf.vlan} needs a gateway port {json.dumps(conf.vlan_gateway_port)}, longer than "
            f"{spec.MAX_IFNAME_LENGTH} bytes: use a shorter bridge name",
            "bridge",
        )
    if not conf.is_layer3 and spec.is_legacy_result(conf.cni_version):
        raise CNIError(
            ErrorCode.INVALID_NETWORK_CONFIG,
            f'a layer-2-only bridge (no "ipam") has no result in cniVersion {conf.cni_version}',
            "ipam: a 0.1.0/0.2.0 result needs an IP address; add an ipam section or use cniVersion 0.3.0 or later",
        )


def load_config(config: dict, cni_args: str, cni_version: str) -> BridgeConfig:
    """Every rule of the reference's loadNetConf and cmdAdd, checked before any side effect."""
    config = respell_keys(config, CONFIG_SCHEMA)
    flags = {field: _bool(config, key) for key, field in _BOOL_KEYS.items()}
    if flags["is_default_gateway"]:
        flags["is_gateway"] = True
    preserve = config.get("preserveDefaultVlan")
    if preserve is None:
        preserve = True
    elif not isinstance(preserve, bool):
        raise _bad("preserveDefaultVlan", preserve, "must be true or false")
    conf = BridgeConfig(
        network=config["name"],
        cni_version=cni_version,
        bridge=_bridge_name(config),
        ip_masq_backend=_masq_backend(config),
        mtu=_mtu(config),
        vlan=_vlan(config),
        vlan_trunk=_vlan_trunk(config),
        preserve_default_vlan=preserve,
        ipam_type=_ipam_type(config),
        mac=_container_mac(config, cni_args),
        dns=_dns(config),
        **flags,
    )
    _check_conflicts(conf)
    return conf


def load_delete_config(config: dict, cni_version: str) -> BridgeConfig:
    """What DEL reads: the network, the IPAM type, ipMasq and macspoofchk. Values only ADD
    uses (mtu, vlan, a MAC, the bridge's name, ...) do not stop a DEL, as they do not stop
    Go's: a config edited after ADD must not leave a runtime retrying a failing DEL forever."""
    config = respell_keys(config, CONFIG_SCHEMA)
    return BridgeConfig(
        network=config["name"],
        cni_version=cni_version,
        ip_masq=_bool(config, "ipMasq"),
        mac_spoof_check=_bool(config, "macspoofchk"),
        ipam_type=_ipam_type(config),
    )
