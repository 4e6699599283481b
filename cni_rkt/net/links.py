"""Links, addresses and routes through pyroute2, in whatever netns a socket was opened.

Every function takes an open `IPRoute` (see `open_netlink`), so a caller decides which
namespace it talks to and how many sockets it opens. Kernel errors become CNIError
(`netlink_errors`); `remove_*` and `find_*` treat absence as a value.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode

IFF_UP = 0x1
IFF_PROMISC = 0x100
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08
RT_SCOPE_UNIVERSE = 0
RTPROT_BOOT = 3  # what the kernel records for a route added without a protocol, as Go's are
# The reference polls the new port this often (ms apart) before "bridge port in error state".
OPER_UP_DELAYS = (0.0, 0.05, 0.5, 1.0, 1.0)
VETH_NAME_ATTEMPTS = 10
DAD_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Link:
    index: int
    name: str
    kind: str
    mac: str
    mtu: int
    master: int
    peer: int  # a veth's peer index (in its own netns), else 0
    operstate: str
    flags: int
    hairpin: bool = False
    isolated: bool = False

    @property
    def promisc(self) -> bool:
        return bool(self.flags & IFF_PROMISC)

    @property
    def is_up(self) -> bool:
        return bool(self.flags & IFF_UP)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A route to add in the pod: dst and optional gw, plus the 1.1.0 attributes."""

    dst: str
    gw: str = ""
    priority: int = 0
    table: int | None = None
    scope: int | None = None
    mtu: int = 0
    advmss: int = 0


def open_netlink():
    """A netlink socket bound to the netns we are in right now."""
    from pyroute2 import IPRoute

    return IPRoute()


def _strerror(exc: Exception) -> str:
    code = getattr(exc, "code", None) or getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        import os

        return os.strerror(code).lower()
    return str(exc)


def _errno(exc: Exception) -> int | None:
    return getattr(exc, "code", None) or getattr(exc, "errno", None)


@contextlib.contextmanager
def netlink_errors(action: str) -> Iterator[None]:
    """Turn a kernel refusal into `<action>: <reason>` (code 999, like the reference)."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        yield
    except (NetlinkError, OSError) as exc:
        raise CNIError(ErrorCode.INTERNAL, f"{action}: {_strerror(exc)}") from exc


# --- reading -------------------------------------------------------------------------


def _to_link(msg) -> Link:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else ""
    hairpin = isolated = False
    if info is not None and info.get_attr("IFLA_INFO_SLAVE_KIND") == "bridge":
        port = info.get_attr("IFLA_INFO_SLAVE_DATA")
        if port is not None:
            hairpin = bool(port.get_attr("IFLA_BRPORT_MODE"))
            isolated = bool(port.get_attr("IFLA_BRPORT_ISOLATED"))
    return Link(
        index=msg["index"],
        name=msg.get_attr("IFLA_IFNAME"),
        kind=kind or "",
        mac=msg.get_attr("IFLA_ADDRESS") or "",
        mtu=msg.get_attr("IFLA_MTU") or 0,
        master=msg.get_attr("IFLA_MASTER") or 0,
        peer=msg.get_attr("IFLA_LINK") or 0,
        operstate=msg.get_attr("IFLA_OPERSTATE") or "",
        flags=msg["flags"],
        hairpin=hairpin,
        isolated=isolated,
    )


def find_link(ipr, name: str) -> Link | None:
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        msgs = ipr.link("get", ifname=name)
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise CNIError(ErrorCode.INTERNAL, f'could not look up "{name}": {_strerror(exc)}') from exc
    return _to_link(msgs[0])


def get_link(ipr, index: int) -> Link:
    with netlink_errors(f"could not look up link {index}"):
        return _to_link(ipr.link("get", index=index)[0])


def ports_of(ipr, bridge_index: int) -> list[Link]:
    with netlink_errors("could not list links"):
        return [_to_link(m) for m in ipr.get_links() if m.get_attr("IFLA_MASTER") == bridge_index]


def addresses(ipr, index: int, family: int | None = None) -> list[str]:
    """Global addresses of a link as "a.b.c.d/n" strings."""
    with netlink_errors(f"could not list addresses of link {index}"):
        msgs = ipr.get_addr(index=index)
    out = []
    for m in msgs:
        if m["scope"] != RT_SCOPE_UNIVERSE:
            continue
        addr = m.get_attr("IFA_ADDRESS")
        if family is not None and ipaddress.ip_address(addr).version != family:
            continue
        out.append(f"{addr}/{m['prefixlen']}")
    return out


def routes(ipr, family: int) -> list[tuple[str, str, int]]:
    """(dst, gw, oif) of the main-table routes of one family."""
    from socket import AF_INET, AF_INET6

    with netlink_errors("could not list routes"):
        msgs = ipr.get_routes(family=AF_INET if family == 4 else AF_INET6)
    out = []
    zero = "0.0.0.0" if family == 4 else "::"
    for m in msgs:
        dst = m.get_attr("RTA_DST") or zero
        out.append((f"{dst}/{m['dst_len']}", m.get_attr("RTA_GATEWAY") or "", m.get_attr("RTA_OIF") or 0))
    return out


# --- the bridge ----------------------------------------------------------------------


def ensure_bridge(ipr, name: str, mtu: int, vlan_filtering: bool, promisc: bool) -> tuple[Link, bool]:
    """The bridge `name`, created if missing; True when this call created it.

    EEXIST is not an error: concurrent first ADDs race to create the same bridge.
    """
    from pyroute2.netlink.exceptions import NetlinkError

    spec: dict = {"ifname": name, "kind": "bridge"}
    if mtu:
        spec["mtu"] = mtu
    if vlan_filtering:
        spec["br_vlan_filtering"] = 1
    created = True
    try:
        ipr.link("add", **spec)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            reason = _strerror(exc)
            if vlan_filtering and exc.code == errno.EOPNOTSUPP:
                reason += " (this kernel has no bridge VLAN filtering, needed by vlan/vlanTrunk)"
            raise CNIError(ErrorCode.INTERNAL, f'failed to create bridge "{name}": could not add "{name}": {reason}') from exc
        created = False
    bridge = find_link(ipr, name)
    if bridge is None:  # removed between our add and our look-up
        raise CNIError(ErrorCode.TRY_AGAIN_LATER, f'bridge "{name}" vanished while it was being set up')
    if bridge.kind != "bridge":
        raise CNIError(ErrorCode.INTERNAL, f'failed to create bridge "{name}": "{name}" already exists but is not a bridge')
    flags = IFF_UP | (IFF_PROMISC if promisc else 0)
    with netlink_errors(f'could not set "{name}" up'):
        ipr.link("set", index=bridge.index, flags=flags, change=flags)
    return get_link(ipr, bridge.index), created


def remove_bridge_if_unused(ipr, name: str) -> bool:
    """Undo of a bridge this ADD created: only while no other pod's port is on it."""
    bridge = find_link(ipr, name)
    if bridge is None or bridge.kind != "bridge" or ports_of(ipr, bridge.index):
        return False
    return remove_link(ipr, name) is not None


def pin_mac(ipr, link: Link) -> None:
    """Set a bridge's MAC to itself, so it stops following its lowest-numbered port."""
    with netlink_errors(f"could not set {link.name}'s mac"):
        ipr.link("set", index=link.index, address=link.mac)


# --- the veth pair -------------------------------------------------------------------


def random_veth_name() -> str:
    """veth + 8 hex digits, as the reference names host ends (NetworkManager ignores them)."""
    return f"veth{secrets.token_hex(4)}"


def create_veth(host_ipr, pod_ipr, pod_fd: int, ifname: str, mtu: int, mac: str = "") -> Link:
    """A veth pair: a random `veth…` end here, `ifname` created directly in the pod's netns."""
    from pyroute2.netlink.exceptions import NetlinkError

    if find_link(pod_ipr, ifname) is not None:
        raise CNIError(ErrorCode.INTERNAL, f"container veth name provided ({ifname}) already exists")
    peer: dict = {"ifname": ifname, "net_ns_fd": pod_fd}
    if mtu:
        peer["mtu"] = mtu
    if mac:
        peer["address"] = mac
    extra = {"mtu": mtu} if mtu else {}
    for _ in range(VETH_NAME_ATTEMPTS):
        name = random_veth_name()
        try:
            host_ipr.link("add", ifname=name, kind="veth", peer=peer, **extra)
        except NetlinkError as exc:
            if exc.code == errno.EEXIST and find_link(pod_ipr, ifname) is None:
                continue  # our random name was taken: draw another
            raise CNIError(ErrorCode.INTERNAL, f"failed to make veth pair: {_strerror(exc)}") from exc
        link = find_link(host_ipr, name)
        if link is None:
            raise CNIError(ErrorCode.INTERNAL, f"veth {name} vanished right after it was created")
        return link
    raise CNIError(ErrorCode.INTERNAL, f"failed to make veth pair: no free veth name after {VETH_NAME_ATTEMPTS} tries")


def attach_port(
    ipr,
    port: Link,
    bridge: Link,
    *,
    hairpin: bool,
    isolated: bool,
    vlan: int = 0,
    trunk: Sequence[int] = (),
    preserve_default_vlan: bool = True,
) -> None:
    """Enslave the host veth to the bridge, set its port flags and VLANs, bring it up."""
    with netlink_errors(f"failed to connect {port.name!r} to bridge {bridge.name}"):
        ipr.link("set", index=port.index, master=bridge.index)
    if hairpin or isolated:
        with netlink_errors(f"failed to set port flags (hairpin, isolated) on {port.name}"):
            ipr.link("set", index=port.index, kind="bridge_slave", mode=int(hairpin), isolated=int(isolated))
    if (vlan or trunk) and not preserve_default_vlan:
        with netlink_errors(f'failed to remove default vlan on interface "{port.name}"'):
            ipr.vlan_filter("del", index=port.index, vlan_info={"vid": 1})
    if vlan:
        with netlink_errors(f'failed to setup vlan tag on interface "{port.name}"'):
            ipr.vlan_filter("add", index=port.index, vlan_info={"vid": vlan, "pvid": True})
    for first, last in vlan_ranges(trunk):
        vid = str(first) if first == last else f"{first}-{last}"
        with netlink_errors(f'failed to setup vlan tag on interface "{port.name}"'):
            ipr.vlan_filter("add", index=port.index, vlan_info={"vid": vid})
    set_up(ipr, port)


def vlan_ranges(vids: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted VLAN ids folded into contiguous (first, last) runs: one request per run."""
    runs: list[tuple[int, int]] = []
    for vid in sorted(set(vids)):
        if runs and runs[-1][1] == vid - 1:
            runs[-1] = (runs[-1][0], vid)
        else:
            runs.append((vid, vid))
    return runs


def port_vlans(ipr, port: Link) -> list[tuple[int, bool, bool]]:
    """(vid, pvid, untagged) of a bridge port."""
    from socket import AF_BRIDGE

    with netlink_errors(f"could not read the VLANs of {port.name}"):
        msgs = ipr.link("dump", family=AF_BRIDGE, ext_mask=2)
    out = []
    for m in msgs:
        if m["index"] != port.index:
            continue
        spec = m.get_attr("IFLA_AF_SPEC")
        for info in spec.get_attrs("IFLA_BRIDGE_VLAN_INFO") if spec else ():
            out.append((info["vid"], bool(info["flags"] & 2), bool(info["flags"] & 4)))
    return out


def set_up(ipr, link: Link) -> None:
    with netlink_errors(f'failed to set "{link.name}" up'):
        ipr.link("set", index=link.index, state="up")


def wait_oper_up(ipr, link: Link, delays: Sequence[float] = OPER_UP_DELAYS) -> Link:
    """Poll until the bridge port forwards (gratuitous ARPs are lost before), bounded."""
    current = link
    for delay in delays:
        if delay:
            time.sleep(delay)
        current = get_link(ipr, link.index)
        if current.operstate == "UP":
            return current
    raise CNIError(ErrorCode.INTERNAL, f"bridge port in error state: {current.operstate.lower()}")


# --- addresses and routes ------------------------------------------------------------


def add_address(ipr, link: Link, cidr: str) -> None:
    iface = ipaddress.ip_interface(cidr)
    with netlink_errors(f"failed to add IP addr {cidr} to {link.name!r}"):
        ipr.addr("add", index=link.index, address=str(iface.ip), prefixlen=iface.network.prefixlen)


def remove_address(ipr, link: Link, cidr: str) -> bool:
    from pyroute2.netlink.exceptions import NetlinkError

    iface = ipaddress.ip_interface(cidr)
    try:
        ipr.addr("del", index=link.index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as exc:
        if exc.code in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT):
            return False
        raise CNIError(ErrorCode.INTERNAL, f"could not remove IP address {cidr} from {link.name!r}: {_strerror(exc)}") from exc
    return True


def ensure_address(ipr, link: Link, cidr: str, force: bool) -> tuple[bool, list[str]]:
    """Put the gateway `cidr` on the bridge; return (added by us, addresses we replaced).

    Another IPv4 address, or an overlapping IPv6 one, is an error unless `force`, in
    which case it is removed first (the reference's forceAddress).
    """
    wanted = ipaddress.ip_interface(cidr)
    replaced: list[str] = []
    for existing in addresses(ipr, link.index, wanted.version):
        other = ipaddress.ip_interface(existing)
        if other == wanted:
            return False, replaced
        if wanted.version == 4 or wanted.ip in other.network or other.ip in wanted.network:
            if not force:
                raise CNIError(
                    ErrorCode.INTERNAL, f'failed to set bridge addr: "{link.name}" already has an IP address different from {cidr}'
                )
            remove_address(ipr, link, existing)
            replaced.append(existing)
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        ipr.addr("add", index=link.index, address=str(wanted.ip), prefixlen=wanted.network.prefixlen)
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:  # a concurrent ADD on the same bridge won the race
            return False, replaced
        raise CNIError(ErrorCode.INTERNAL, f'failed to set bridge addr: could not add IP address to "{link.name}": {_strerror(exc)}') from exc
    return True, replaced


def add_route(ipr, link: Link, route: RouteSpec) -> None:
    spec: dict = {"dst": route.dst, "oif": link.index, "proto": RTPROT_BOOT}
    if route.gw:
        spec["gateway"] = route.gw
    if route.priority:
        spec["priority"] = route.priority
    if route.table is not None:
        spec["table"] = route.table
    if route.scope is not None:
        spec["scope"] = route.scope
    metrics = {k: v for k, v in (("RTAX_MTU", route.mtu), ("RTAX_ADVMSS", route.advmss)) if v}
    if metrics:
        spec["metrics"] = metrics
    via = f" via {route.gw}" if route.gw else ""
    with netlink_errors(f"failed to add route '{route.dst}{via} dev {link.name}'"):
        ipr.route("add", **spec)


def wait_dad_settled(ipr, link: Link, timeout: float = DAD_TIMEOUT) -> None:
    """Wait (bounded) until no IPv6 address of `link` is tentative; DAD failure is an error."""
    deadline = time.monotonic() + timeout
    while True:
        with netlink_errors(f"could not list addresses of {link.name}"):
            msgs = ipr.get_addr(index=link.index, family=10)
        flags = [m.get_attr("IFA_FLAGS") or m["flags"] for m in msgs]
        if any(f & IFA_F_DADFAILED for f in flags):
            raise CNIError(ErrorCode.INTERNAL, f"duplicate address detection failed on {link.name}")
        if not any(f & IFA_F_TENTATIVE for f in flags):
            return
        if time.monotonic() > deadline:
            raise CNIError(ErrorCode.INTERNAL, f"IPv6 addresses of {link.name} still tentative after {timeout:g}s")
        time.sleep(0.05)


# --- removal -------------------------------------------------------------------------


def remove_link(ipr, name: str) -> list[str] | None:
    """Delete `name`; return the global addresses it had, or None if it was not there."""
    from pyroute2.netlink.exceptions import NetlinkError

    link = find_link(ipr, name)
    if link is None:
        return None
    had = addresses(ipr, link.index)
    try:
        ipr.link("del", index=link.index)
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise CNIError(ErrorCode.INTERNAL, f"failed to delete {name!r}: {_strerror(exc)}") from exc
    return had
