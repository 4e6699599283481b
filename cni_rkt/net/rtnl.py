"""A synchronous rtnetlink socket: pyroute2's message classes over a plain kernel socket.

pyroute2's `IPRoute` runs every request through an asyncio event loop and decodes replies
it is not asked for; on the project's machine that was 0.3-1 ms of Python per request, 20
requests per pod ADD. The kernel protocol is simple when used one request at a time: send
a message, read until its ACK (or a dump's DONE). pyroute2 still encodes every request
(`ifinfmsg`, `ifaddrmsg`, `rtmsg`: attribute names and nested layouts are its own); the
answers are read lazily by rtnl_answers.py, which decodes only what the plugins look at.

A `RouteSocket` talks to the network namespace it was opened in. Errors are pyroute2's
`NetlinkError` (with the errno in `.code`), as `IPRoute` raised them.
"""

from __future__ import annotations

import errno
import importlib
import os
import socket
import struct
from collections.abc import Iterable

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from cni_rkt.net import rtnl_answers as answers

importlib.import_module("pyroute2.config.log")  # its logger's NullHandler, which pyroute2's __init__ sets up

SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12  # dumps honour the filters in the request (kernel 4.20+)
RECEIVE_BUFFER = 1 << 16
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_STATUS = struct.Struct("=i")  # NLMSG_ERROR's and NLMSG_DONE's first field: 0 or -errno
# IFLA_EXT_MASK for link requests: no statistics, which are most of a link's reply and
# which nothing here reads (RTEXT_FILTER_SKIP_STATS, kernel 4.17+; older kernels send them)
LINK_EXT_MASK = ("IFLA_EXT_MASK", 1 << 3)

NEW = NLM_F_CREATE | NLM_F_EXCL  # "add" fails with EEXIST if present, as `ip ... add`
NLM_F_DUMP_INTR = 0x10
DUMP_ATTEMPTS = 3

Attrs = Iterable[tuple[str, object]]


class RouteSocket:
    """One NETLINK_ROUTE socket; requests are sent and answered one at a time."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        try:
            self._sock.bind((0, 0))
            try:
                self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            except OSError:
                pass  # older kernels: unfiltered dumps, which the callers filter again
        except BaseException:
            self._sock.close()
            raise
        self._sequence = 0
        self._netns_inode = os.stat("/proc/self/ns/net").st_ino
        self._iproute = None

    def close(self) -> None:
        self._sock.close()
        if self._iproute is not None:
            self._iproute.close()

    def __enter__(self) -> RouteSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- links ---------------------------------------------------------------------

    def get_link(self, *, index: int = 0, name: str = "") -> answers.Answer:
        attrs = [("IFLA_IFNAME", name), LINK_EXT_MASK] if name else [LINK_EXT_MASK]
        return self._request(ifinfmsg, RTM_GETLINK, 0, {"index": index}, attrs, answers.LINK)[0]

    def dump_links(self, master: int = 0) -> list[answers.Answer]:
        """All links, or the ports of bridge `master` (filtered by the kernel where it can)."""
        attrs = [("IFLA_MASTER", master), LINK_EXT_MASK] if master else [LINK_EXT_MASK]
        replies = self._request(ifinfmsg, RTM_GETLINK, NLM_F_DUMP, {}, attrs, answers.LINK)
        return [m for m in replies if m.get_attr("IFLA_MASTER") == master] if master else replies

    def new_link(self, attrs: Attrs, flags: int = 0, change: int = 0) -> None:
        self._request(ifinfmsg, RTM_NEWLINK, NEW, {"flags": flags, "change": change}, attrs)

    def set_link(self, index: int, attrs: Attrs = (), flags: int = 0, change: int = 0) -> None:
        # RTM_NEWLINK on an existing link, as `ip link set`: RTM_SETLINK ignores IFLA_LINKINFO
        self._request(ifinfmsg, RTM_NEWLINK, 0, {"index": index, "flags": flags, "change": change}, attrs)

    def delete_link(self, index: int) -> None:
        self._request(ifinfmsg, RTM_DELLINK, 0, {"index": index}, ())

    # --- addresses -----------------------------------------------------------------

    def dump_addresses(self, index: int, family: int = socket.AF_UNSPEC) -> list[answers.Answer]:
        replies = self._request(ifaddrmsg, RTM_GETADDR, NLM_F_DUMP, {"index": index, "family": family}, (), answers.ADDRESS)
        return [m for m in replies if m["index"] == index]  # in case the kernel did not filter

    def change_address(self, add: bool, index: int, family: int, address: str, prefixlen: int) -> None:
        fields = {"index": index, "family": family, "prefixlen": prefixlen}
        attrs = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
        if add:
            self._request(ifaddrmsg, RTM_NEWADDR, NEW, fields, attrs)
        else:
            self._request(ifaddrmsg, RTM_DELADDR, 0, fields, attrs)

    # --- routes --------------------------------------------------------------------

    def dump_routes(self, family: int) -> list[answers.Answer]:
        return self._request(rtmsg, RTM_GETROUTE, NLM_F_DUMP, {"family": family}, (), answers.ROUTE)

    def new_route(self, fields: dict, attrs: Attrs) -> None:
        self._request(rtmsg, RTM_NEWROUTE, NEW, fields, attrs)

    # --- bridge VLANs ----------------------------------------------------------------

    def vlan_filter(self, command: str, index: int, vlan_info: dict) -> None:
        """Bridge VLAN requests go through pyroute2's IPRoute, whose request builder expands
        pvid/untagged and VLAN ranges; it is opened on first use, here, in this netns."""
        if self._iproute is None:
            if os.stat("/proc/self/ns/net").st_ino != self._netns_inode:
                raise RuntimeError("vlan_filter called outside the socket's network namespace")
            from pyroute2 import IPRoute

            self._iproute = IPRoute()
        self._iproute.vlan_filter(command, index=index, vlan_info=vlan_info)

    # --- the request/reply loop ----------------------------------------------------

    def _request(self, message_class, message_type: int, flags: int, fields: dict, attrs: Attrs, layout=None) -> list:
        """Send one request; return its answers (a dump's messages, or a get's one, read with
        `layout` from rtnl_answers) once the kernel has acknowledged it. A kernel refusal
        raises NetlinkError."""
        message = message_class()
        for key, value in fields.items():
            message[key] = value
        message["attrs"] = list(attrs)
        message["header"]["type"] = message_type
        message["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        for _ in range(DUMP_ATTEMPTS):
            self._sequence += 1
            message["header"]["sequence_number"] = self._sequence
            message.encode()
            self._sock.send(message.data)
            replies, consistent = self._replies(self._sequence, layout)
            if consistent:
                return replies
        raise NetlinkError(errno.EAGAIN, "the kernel's tables kept changing during a dump")

    def _replies(self, sequence: int, layout) -> tuple[list, bool]:
        """Read until the request's ACK (or a dump's DONE); the framing is read with struct.
        Also whether the answer is consistent: the kernel flags a dump during which its
        tables changed (NLM_F_DUMP_INTR), and the request is then made again."""
        replies, consistent = [], True
        while True:
            data = self._sock.recv(RECEIVE_BUFFER)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, flags, answered, _port = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise NetlinkError(errno.EBADMSG, "malformed netlink reply")
                if answered == sequence:  # else a late answer to an earlier request that raised
                    consistent = consistent and not flags & NLM_F_DUMP_INTR
                    if kind == NLMSG_ERROR or kind == NLMSG_DONE:
                        (status,) = _STATUS.unpack_from(data, offset + _HEADER.size) if length >= 20 else (0,)
                        if status < 0:
                            raise NetlinkError(-status, os.strerror(-status))
                        return replies, consistent
                    replies.append(answers.Answer(layout, data[offset : offset + length]))
                offset += (length + 3) & ~3


# --- link removals, as the kernel announces them -----------------------------------------

RTMGRP_LINK = 1
_LINK_INDEX = struct.Struct("=BxHi")  # ifinfomsg's family, type and index, after the header


class RemovalWatch:
    """RTM_DELLINK announcements of the network namespace it was opened in.

    Deleting a veth unregisters both ends in one batch: first both leave every list and
    lookup, then each end in turn has its addresses, routes and bridge port removed and is
    announced. So once the second end (the peer of the one deleted) is announced, nothing
    of the pair is left in view. The answer to the RTM_DELLINK request itself comes 10-25 ms
    later, after RCU grace periods and the wait for the devices' last references, which
    nothing outside the kernel can observe.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        try:
            self._sock.bind((0, RTMGRP_LINK))
        except OSError:
            self._sock.close()
            raise
        self._sock.setblocking(False)
        self.lost_track = False  # the socket overflowed: an announcement may have been dropped

    def fileno(self) -> int:
        return self._sock.fileno()

    def announced(self, index: int) -> bool:
        """Whether the removal of link `index` was announced among what has arrived so far."""
        while True:
            try:
                data = self._sock.recv(RECEIVE_BUFFER)
            except BlockingIOError:
                return False
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.lost_track = True
                    continue
                raise
            offset = 0
            while offset + _HEADER.size + _LINK_INDEX.size <= len(data):
                length, kind, _flags, _sequence, _port = _HEADER.unpack_from(data, offset)
                family, _type, removed = _LINK_INDEX.unpack_from(data, offset + _HEADER.size)
                if kind == RTM_DELLINK and family == socket.AF_UNSPEC and removed == index:
                    return True
                if length < _HEADER.size:
                    break
                offset += (length + 3) & ~3

    def close(self) -> None:
        self._sock.close()
