"""Plugin parity beyond the schema: cross-field rules the plugins enforce when a pod starts."""

from __future__ import annotations

from collections.abc import Callable

from cni_rkt.protocol.mac import parse_go_mac
from cni_rkt.validate.document import Document, pointer_join
from cni_rkt.validate.ipam_checks import parse_cidr

IFNAMSIZ_MAX = 15  # Linux interface names: 16 bytes including the terminating NUL
FOUR_GB_BITS = (2**32 - 1) * 8  # bandwidth: burst / 8 must stay below MaxUint32


def check_bridge(doc: Document, pointer: str, conf: dict) -> None:
    name = conf.get("bridge", "cni0")
    if isinstance(name, str):
        check_ifname(doc, pointer_join(pointer, "bridge"), name, "bridge")
        vlan = conf.get("vlan")
        # isDefaultGateway implies isGateway; without IPAM there is no gateway to place.
        is_gateway = conf.get("isGateway") is True or conf.get("isDefaultGateway") is True
        has_ipam = isinstance(conf.get("ipam"), dict) and bool(conf["ipam"].get("type"))
        if is_int(vlan) and vlan > 0 and is_gateway and has_ipam:
            derived = f"{name}.{vlan}"
            if len(derived.encode()) > IFNAMSIZ_MAX:
                doc.emit("CNI210", pointer_join(pointer, "vlan"), f"with vlan and isGateway the plugin creates "
                         f"\"{derived}\", {len(derived.encode())} characters; Linux allows {IFNAMSIZ_MAX}")
    check_vlan_trunk(doc, pointer, conf)
    if conf.get("hairpinMode") is True and conf.get("promiscMode") is True:
        doc.emit("CNI213", pointer_join(pointer, "promiscMode"), "hairpinMode and promiscMode are both true (bridge "
                 "fails with: cannot set hairpin mode and promiscuous mode at the same time)", at_key=True)
    ipam = conf.get("ipam")
    if conf.get("disableContainerInterface") is True and isinstance(ipam, dict) and ipam.get("type"):
        doc.emit("CNI214", pointer_join(pointer, "disableContainerInterface"), "disableContainerInterface is true "
                 "and ipam is set (bridge fails with: cannot use IPAM when DisableContainerInterface flag is set)",
                 at_key=True)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_vlan_trunk(doc: Document, pointer: str, conf: dict) -> None:
    """bridge's collectVlanTrunk: minID and maxID come in pairs, min <= max; no trunk beside an access vlan."""
    trunk = conf.get("vlanTrunk")
    if not isinstance(trunk, list):
        return  # absent, or a wrong type the schema reports
    has_ids = False
    for index, item in enumerate(trunk):
        if not isinstance(item, dict):
            continue
        low, high = item.get("minID"), item.get("maxID")
        has_ids = has_ids or is_int(item.get("id")) or (is_int(low) and is_int(high))
        if (low is None) != (high is None):
            missing = "minID" if low is None else "maxID"
            doc.emit("CNI107", pointer_join(pointer, "vlanTrunk", index), "bridge fails with: minID and maxID should "
                     f"be configured simultaneously, {missing} is missing")
        elif is_int(low) and is_int(high) and low > high:
            doc.emit("CNI107", pointer_join(pointer, "vlanTrunk", index), f"minID {low} > maxID {high} (bridge "
                     "fails with: minID is greater than maxID in trunk parameter)")
    vlan = conf.get("vlan")
    if is_int(vlan) and vlan > 0 and has_ids:
        doc.emit("CNI107", pointer_join(pointer, "vlanTrunk"), f"vlanTrunk beside vlan {vlan} (bridge fails with: "
                 "cannot set vlan and vlanTrunk at the same time); a port is either access or trunk", at_key=True)


def check_ifname(doc: Document, pointer: str, name: str, what: str) -> None:
    length = len(name.encode())
    if length > IFNAMSIZ_MAX:
        doc.emit("CNI210", pointer, f"{what} name \"{name}\" is {length} characters; Linux allows {IFNAMSIZ_MAX} "
                 "(netlink fails with: numerical result out of range)")


def check_portmap(doc: Document, pointer: str, conf: dict) -> None:
    if conf.get("markMasqBit") is not None and conf.get("externalSetMarkChain") is not None:  # Go: nil pointers
        doc.emit("CNI215", pointer_join(pointer, "externalSetMarkChain"), "markMasqBit and externalSetMarkChain are "
                 "both set (portmap fails with: Cannot specify externalSetMarkChain and markMasqBit)", at_key=True)


def check_bandwidth(doc: Document, pointer: str, conf: dict) -> None:
    for direction in ("ingress", "egress"):
        rate, burst = conf.get(f"{direction}Rate", 0), conf.get(f"{direction}Burst", 0)
        if not all(is_int(v) for v in (rate, burst)):
            continue  # the schema reports the type
        if rate and not burst:
            doc.emit("CNI216", pointer_join(pointer, f"{direction}Rate"), f"{direction}Rate is set without "
                     f"{direction}Burst (bandwidth fails with: if rate is set, burst must also be set)", at_key=True)
        elif burst and not rate:
            doc.emit("CNI216", pointer_join(pointer, f"{direction}Burst"), f"{direction}Burst is set without "
                     f"{direction}Rate (bandwidth fails with: if burst is set, rate must also be set)", at_key=True)
        if burst >= FOUR_GB_BITS:
            doc.emit("CNI216", pointer_join(pointer, f"{direction}Burst"), f"{direction}Burst {burst} bits "
                     "(bandwidth fails with: burst cannot be more than 4GB)")
    subnet_lists = [key for key in ("shapedSubnets", "unshapedSubnets") if conf.get(key)]
    if len(subnet_lists) == 2:
        doc.emit("CNI107", pointer_join(pointer, "unshapedSubnets"), "shapedSubnets and unshapedSubnets are both set "
                 "(bandwidth fails with: unshapedSubnets and shapedSubnets cannot be both specified, one of them "
                 "should be discarded)", at_key=True)
    for key in subnet_lists:
        if isinstance(conf[key], list):
            for index, subnet in enumerate(conf[key]):
                parse_cidr(doc, pointer_join(pointer, key, index), subnet)  # bandwidth: bad subnet %q provided


def check_flannel(doc: Document, pointer: str, conf: dict) -> None:
    delegate = conf.get("delegate")
    if not isinstance(delegate, dict):
        return
    base = pointer_join(pointer, "delegate")
    if "type" in delegate and not isinstance(delegate["type"], str):
        doc.emit("CNI217", pointer_join(base, "type"), "flannel fails with: 'delegate' dictionary, if present, must "
                 "have (string) 'type' field")
    for key in ("name", "ipam"):
        if key in delegate:
            doc.emit("CNI217", pointer_join(base, key), f"flannel fails with: 'delegate' dictionary must not have "
                     f"'{key}' field, it'll be set by flannel", at_key=True)
    if delegate.get("type", "bridge") == "bridge":
        check_bridge(doc, base, delegate)


def check_ptp(doc: Document, pointer: str, conf: dict) -> None:
    """ptp has no layer-2 mode: it always runs ipam.type, and an empty name is not a plugin."""
    ipam = conf.get("ipam")
    if ipam is None or ipam == {}:
        at, what = (pointer, "no \"ipam\"") if ipam is None else (pointer_join(pointer, "ipam"), "an empty \"ipam\"")
        doc.emit("CNI116", at, f"ptp with {what} fails with: no plugin name provided; give it an IPAM plugin "
                 "such as host-local")


def is_go_mac(text: str) -> bool:
    return parse_go_mac(text) is not None


def check_mac(doc: Document, pointer: str, conf: dict) -> None:
    mac = conf.get("mac")
    if isinstance(mac, str) and mac and not is_go_mac(mac):
        doc.emit("CNI107", pointer_join(pointer, "mac"), f"{mac!r} is not a MAC address (the plugin fails with: "
                 f"invalid args {mac} for MAC addr)")


def check_tuning(doc: Document, pointer: str, conf: dict) -> None:
    check_mac(doc, pointer, conf)
    sysctl = conf.get("sysctl")
    if isinstance(sysctl, dict):
        for key in sysctl:
            if not key.replace("/", ".").startswith("net."):
                doc.emit("CNI107", pointer_join(pointer, "sysctl", key), f"sysctl {key!r} is not under net.* "
                         f"(tuning fails with: invalid net sysctl key: {key!r})", at_key=True)


PLUGIN_CHECKS: dict[str, Callable[[Document, str, dict], None]] = {
    "bridge": check_bridge,
    "portmap": check_portmap,
    "bandwidth": check_bandwidth,
    "flannel": check_flannel,
    "tuning": check_tuning,
    "macvlan": check_mac,
    "ptp": check_ptp,
}
