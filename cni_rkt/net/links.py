"""The bridge, the veth pair and the bridge port, through an open netlink socket.

`ensure_` creates or reuses, `create_` fails if present, `remove_` tolerates absence.
"""

from __future__ import annotations

import errno
import os
import select
import time
from collections.abc import Sequence

from cni_rkt.background import BackgroundCall
from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.net.addresses import addresses
from cni_rkt.net.netlink import (
    IFF_PROMISC,
    IFF_UP,
    Link,
    find_link,
    get_link,
    netlink_errors,
    open_netlink,
    pod_links,
    port_flags,
    ports_of,
    strerror,
)

# re-exported, so a verb needs one import for links
__all__ = ["Link", "find_link", "get_link", "open_netlink", "pod_links", "port_flags", "ports_of"]

# The reference polls the new port this often (s apart) before "bridge port in error state".
OPER_UP_DELAYS = (0.0, 0.05, 0.5, 1.0, 1.0)
VETH_NAME_ATTEMPTS = 10
ANNOUNCEMENT_POLL = 0.002  # seconds between looks at whether a background deletion ended instead


# --- the bridge ----------------------------------------------------------------------


def ensure_bridge(ipr, name: str, mtu: int, vlan_filtering: bool, promisc: bool) -> tuple[Link, Link | None]:
    """The bridge `name`, up, created if missing; and how it was before (None: we created it).

    Looked up first (one request when it exists, as for every pod but the first); EEXIST
    on creation is not an error: concurrent first ADDs race to create the same bridge.
    """
    from pyroute2.netlink.exceptions import NetlinkError

    bridge = before = find_link(ipr, name)
    if bridge is None:
        info: list = [("IFLA_INFO_KIND", "bridge")]
        if vlan_filtering:
            info.append(("IFLA_INFO_DATA", {"attrs": [("IFLA_BR_VLAN_FILTERING", 1)]}))
        attrs: list = [("IFLA_IFNAME", name), ("IFLA_LINKINFO", {"attrs": info})]
        if mtu:
            attrs.append(("IFLA_MTU", mtu))
        created = True
        try:
            ipr.new_link(attrs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                reason = strerror(exc)
                if vlan_filtering and exc.code == errno.EOPNOTSUPP:
                    reason += " (this kernel has no bridge VLAN filtering, needed by vlan/vlanTrunk)"
                raise CNIError(ErrorCode.INTERNAL, f'failed to create bridge "{name}": could not add "{name}": {reason}') from exc
            created = False
        bridge = find_link(ipr, name)
        if bridge is None:  # removed between our add and our look-up
            raise CNIError(ErrorCode.TRY_AGAIN_LATER, f'bridge "{name}" vanished while it was being set up')
        if not created:
            before = bridge
    if bridge.kind != "bridge":
        raise CNIError(ErrorCode.INTERNAL, f'failed to create bridge "{name}": "{name}" already exists but is not a bridge')
    flags = IFF_UP | (IFF_PROMISC if promisc else 0)
    if bridge.flags & flags != flags:
        set_flags(ipr, bridge, flags, flags)
        bridge = get_link(ipr, bridge.index)
    return bridge, before


def set_flags(ipr, link: Link, flags: int, mask: int) -> None:
    """Set the `mask` bits of a link's flags (IFF_UP, IFF_PROMISC) to those of `flags`."""
    with netlink_errors(f'could not set flags of "{link.name}"'):
        ipr.set_link(link.index, flags=flags, change=mask)


def restore_bridge_flags(ipr, before: Link) -> None:
    """Undo for a bridge that existed: put its up/promisc flags back, unless a port is on it now."""
    if ports_of(ipr, before.index):
        return
    mask = IFF_UP | IFF_PROMISC
    current = find_link(ipr, before.name)
    if current is not None and current.index == before.index and current.flags & mask != before.flags & mask:
        set_flags(ipr, current, before.flags, mask)


def remove_bridge_if_unused(ipr, name: str) -> bool:
    """Undo of a bridge this ADD created: only while no other pod's port is on it."""
    bridge = find_link(ipr, name)
    if bridge is None or bridge.kind != "bridge" or ports_of(ipr, bridge.index):
        return False
    return remove_link(ipr, name) is not None


def pin_mac(ipr, link: Link) -> None:
    """Set a bridge's MAC to itself, so it stops following its lowest-numbered port."""
    with netlink_errors(f"could not set {link.name}'s mac"):
        ipr.set_link(link.index, [("IFLA_ADDRESS", link.mac)])


# --- the veth pair -------------------------------------------------------------------


def random_veth_name() -> str:
    """veth + 8 hex digits, as the reference names host ends (NetworkManager ignores them)."""
    # os.urandom is what secrets.token_hex reads; importing secrets costs ~7 ms (hashlib, random).
    return f"veth{os.urandom(4).hex()}"


def create_veth(host_ipr, pod_ipr, pod_fd: int | None, ifname: str, mtu: int, mac: str = "") -> Link:
    """A veth pair: a random `veth…` end here, `ifname` created directly in the pod's netns
    (here too when `pod_fd` is None, `pod_ipr` then being `host_ipr`)."""
    from pyroute2.netlink.exceptions import NetlinkError

    peer: list = [("IFLA_IFNAME", ifname)]
    if pod_fd is not None:
        peer.append(("IFLA_NET_NS_FD", pod_fd))
    if mtu:
        peer.append(("IFLA_MTU", mtu))
    if mac:
        peer.append(("IFLA_ADDRESS", mac))
    info = [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": peer})]})]
    for _ in range(VETH_NAME_ATTEMPTS):
        name = random_veth_name()
        attrs: list = [("IFLA_IFNAME", name), ("IFLA_LINKINFO", {"attrs": info})]
        if mtu:
            attrs.append(("IFLA_MTU", mtu))
        try:
            host_ipr.new_link(attrs)
        except NetlinkError as exc:
            # EEXIST: either end's name is taken; only the pod's is the caller's problem
            if exc.code == errno.EEXIST and find_link(pod_ipr, ifname) is not None:
                raise CNIError(ErrorCode.INTERNAL, f"container veth name provided ({ifname}) already exists") from exc
            if exc.code == errno.EEXIST:
                continue  # our random name was taken: draw another
            raise CNIError(ErrorCode.INTERNAL, f"failed to make veth pair: {strerror(exc)}") from exc
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
    # Without port settings to make in between, one request does both: whichever the kernel
    # applies first, the port ends enslaved and up, as after the reference's two requests
    # (a failure may leave the veth up and unattached: the ADD's undo deletes it).
    plain = not (hairpin or isolated or vlan or trunk)
    with netlink_errors(f"failed to connect {port.name!r} to bridge {bridge.name}"):
        if plain:
            ipr.set_link(port.index, [("IFLA_MASTER", bridge.index)], flags=IFF_UP, change=IFF_UP)
            return
        ipr.set_link(port.index, [("IFLA_MASTER", bridge.index)])
    if hairpin or isolated:
        with netlink_errors(f"failed to set port flags (hairpin, isolated) on {port.name}"):
            port_data = [("IFLA_BRPORT_MODE", int(hairpin)), ("IFLA_BRPORT_ISOLATED", int(isolated))]
            info = [("IFLA_INFO_SLAVE_KIND", "bridge"), ("IFLA_INFO_SLAVE_DATA", {"attrs": port_data})]
            ipr.set_link(port.index, [("IFLA_LINKINFO", {"attrs": info})])
    if (vlan or trunk) and not preserve_default_vlan:
        with netlink_errors(f'failed to remove default vlan on interface "{port.name}"'):
            ipr.vlan_filter("del", port.index, {"vid": 1})
    if vlan:
        with netlink_errors(f'failed to setup vlan tag on interface "{port.name}"'):
            ipr.vlan_filter("add", port.index, {"vid": vlan, "pvid": True})
    for first, last in vlan_ranges(trunk):
        vid = str(first) if first == last else f"{first}-{last}"
        with netlink_errors(f'failed to setup vlan tag on interface "{port.name}"'):
            ipr.vlan_filter("add", port.index, {"vid": vid})
    set_up(ipr, port)


def ensure_vlan_gateway_port(ipr, bridge: Link, name: str, vlan: int, preserve_default_vlan: bool) -> tuple[Link, Link | None]:
    """The `name` end of a veth whose random-named peer is an untagged port of `vlan` on the
    bridge: the host's leg in that VLAN, which carries the gateway address (as the reference).
    Returns it, and the bridge-side port when this call created the pair (else None)."""
    existing = find_link(ipr, name)
    if existing is not None:
        return existing, None
    try:
        port = create_veth(ipr, ipr, None, name, bridge.mtu)
    except CNIError:
        existing = find_link(ipr, name)  # a concurrent ADD made it first
        if existing is None:
            raise
        return existing, None
    try:
        attach_port(ipr, port, bridge, hairpin=False, isolated=False, vlan=vlan, preserve_default_vlan=preserve_default_vlan)
        gateway = find_link(ipr, name)
        if gateway is None:
            raise CNIError(ErrorCode.INTERNAL, f"vlan gateway port {name} vanished right after it was created")
        set_up(ipr, gateway)
    except CNIError:
        remove_link(ipr, port.name)
        raise
    return get_link(ipr, gateway.index), port


def vlan_ranges(vids: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted VLAN ids folded into contiguous (first, last) runs: one request per run."""
    runs: list[tuple[int, int]] = []
    for vid in sorted(set(vids)):
        if runs and runs[-1][1] == vid - 1:
            runs[-1] = (runs[-1][0], vid)
        else:
            runs.append((vid, vid))
    return runs


def set_up(ipr, link: Link) -> None:
    with netlink_errors(f'failed to set "{link.name}" up'):
        ipr.set_link(link.index, flags=IFF_UP, change=IFF_UP)


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


# --- removal -------------------------------------------------------------------------


def remove_link(ipr, name: str) -> list[str] | None:
    """Delete `name`; return the global addresses it had, or None if it was not there."""
    removal = LinkRemoval(ipr, name)
    removal.run()
    return removal.addresses


class LinkRemoval:
    """Deleting `name`, in two steps: the look-up (its addresses are read now) and the
    deletion, which `start` runs in the background. Deleting a veth blocks in the kernel for
    about 20 ms (it waits out an RCU grace period, without the GIL); a DEL spends that time
    on its other steps and calls `wait`, which raises what the deletion raised."""

    def __init__(self, ipr, name: str) -> None:
        self.ipr, self.name = ipr, name
        self.link = find_link(ipr, name)
        self.addresses = addresses(ipr, self.link.index) if self.link is not None else None
        self._pending: BackgroundCall | None = None
        self._watch = None

    def start(self, peer_watch=None) -> LinkRemoval:
        """`peer_watch`: an rtnl.RemovalWatch of the netns of the veth's other end. The kernel
        unregisters the deleted end, then its peer, and announces each once its addresses,
        routes and bridge port are gone: the peer's announcement comes last."""
        self._watch = peer_watch
        if self.link is not None:  # else there is nothing to delete, nor to wait for
            self._pending = BackgroundCall(f"remove {self.name}", self.run)
        return self

    def run(self) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        if self.link is None:
            return
        try:
            self.ipr.delete_link(self.link.index)
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                self.addresses = None
                return
            raise CNIError(ErrorCode.INTERNAL, f"failed to delete {self.name!r}: {strerror(exc)}") from exc

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.wait()

    def wait_until_gone(self) -> bool:
        """Until the link is gone as far as anyone can see. True: the kernel announced its
        removal, and the deletion's own answer is still to come (`wait` collects it). False:
        the deletion is over (what it raised is raised here), or there was none."""
        pending = self._pending
        if pending is not None and self._watch is not None and self.link.peer:
            while not pending.done() and not self._watch.lost_track:
                if self._watch.announced(self.link.peer):
                    return True
                select.select([self._watch], [], [], ANNOUNCEMENT_POLL)
        self.wait()
        return False
