"""The netlink socket and the link record every net/ module shares (pyroute2 stays in here and below).

Every function takes an open `RouteSocket` (see `open_netlink` and rtnl.py), so a caller
decides which namespace it talks to and how many sockets it opens. Kernel errors become
CNIError in `netlink_errors`; look-ups treat absence as a value.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode

IFF_UP = 0x1
IFF_PROMISC = 0x100


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

    @property
    def promisc(self) -> bool:
        return bool(self.flags & IFF_PROMISC)


def open_netlink():
    """A netlink socket bound to the netns we are in right now."""
    from cni_rkt.net.rtnl import RouteSocket

    return RouteSocket()


def strerror(exc: Exception) -> str:
    code = getattr(exc, "code", None) or getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code).lower()
    return str(exc)



@contextlib.contextmanager
def netlink_errors(action: str) -> Iterator[None]:
    """Turn a kernel refusal into `<action>: <reason>` (code 999, like the reference)."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        yield
    except (NetlinkError, OSError) as exc:
        raise CNIError(ErrorCode.INTERNAL, f"{action}: {strerror(exc)}") from exc


def _to_link(msg) -> Link:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else ""
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
    )


def find_link(ipr, name: str) -> Link | None:
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        msg = ipr.get_link(name=name)
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise CNIError(ErrorCode.INTERNAL, f'could not look up "{name}": {strerror(exc)}') from exc
    return _to_link(msg)


def get_link(ipr, index: int) -> Link:
    with netlink_errors(f"could not look up link {index}"):
        return _to_link(ipr.get_link(index=index))


def port_flags(ipr, index: int) -> tuple[bool, bool]:
    """(hairpin, isolated) of bridge port `index`; (False, False) if it is not a port. Kept
    out of Link: decoding a port's bridge data is most of a look-up's cost, and only CHECK
    reads it."""
    with netlink_errors(f"could not look up link {index}"):
        info = ipr.get_link(index=index).get_attr("IFLA_LINKINFO")
    if info is None or info.get_attr("IFLA_INFO_SLAVE_KIND") != "bridge":
        return False, False
    port = info.get_attr("IFLA_INFO_SLAVE_DATA")
    if port is None:
        return False, False
    return bool(port.get_attr("IFLA_BRPORT_MODE")), bool(port.get_attr("IFLA_BRPORT_ISOLATED"))


def ports_of(ipr, bridge_index: int) -> list[Link]:
    with netlink_errors("could not list links"):
        return [_to_link(m) for m in ipr.dump_links(master=bridge_index)]


def pod_links(ipr) -> list[Link]:
    """The links of this netns that may carry a pod's traffic: every port of any bridge (or
    other master) and every veth end. That covers every pod a bridge or ptp plugin made, and
    more; a pod whose host end is neither (a netkit device, say) is not seen."""
    with netlink_errors("could not list links"):
        found = [_to_link(m) for m in ipr.dump_links()]
    return [link for link in found if link.master or link.kind == "veth"]
