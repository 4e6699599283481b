"""Does an nftables table exist? One netlink request instead of an `nft` exec.

Every DEL must look for the reference's nftables masquerade rules, but almost no node has
that table. Asking the kernel directly (NFT_MSG_GETTABLE on a NETLINK_NETFILTER socket,
stdlib only) costs microseconds; `nft -j list table` costs a process. Any surprise answers
None, and the caller runs `nft` as before.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE = 0, 1
NFTA_TABLE_NAME = 1
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NFPROTO = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_NFGENMSG = struct.Struct("=BBH")  # family, version, resource id (big endian, 0)


def render_get_table(family: str, table: str, sequence: int = 1) -> bytes:
    """The NFT_MSG_GETTABLE request for one table (pure, so it can be pinned by a test)."""
    name = table.encode() + b"\0"
    attribute = struct.pack("=HH", 4 + len(name), NFTA_TABLE_NAME) + name
    attribute += b"\0" * (-len(attribute) % 4)
    body = _NFGENMSG.pack(NFPROTO[family], 0, 0) + attribute
    message_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE
    return _HEADER.pack(_HEADER.size + len(body), message_type, NLM_F_REQUEST | NLM_F_ACK, sequence, 0) + body


def parse_reply(reply: bytes) -> bool | None:
    """True for the table itself, False for "no such table", None for anything else."""
    if len(reply) < _HEADER.size:
        return None
    _length, message_type, _flags, _sequence, _port = _HEADER.unpack_from(reply)
    if message_type == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE:
        return True
    if message_type == NLMSG_ERROR and len(reply) >= _HEADER.size + 4:
        (error,) = struct.unpack_from("=i", reply, _HEADER.size)
        return False if error == -errno.ENOENT else None
    return None


def table_exists(family: str, table: str) -> bool | None:
    """Ask the kernel (in the current netns) whether `family table` exists; None if unsure."""
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
            sock.settimeout(1.0)
            sock.bind((0, 0))
            sock.send(render_get_table(family, table, sequence=os.getpid() & 0xFFFF or 1))
            return parse_reply(sock.recv(65536))
    except OSError:
        return None
