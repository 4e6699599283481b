"""Does an nftables table (or chain) exist? One netlink request instead of a program.

Every DEL must look for the reference's nftables masquerade rules, but almost no node has
that table; and iptables-nft keeps each ipMasq chain as a chain of table `nat` in family
ip or ip6. Asking the kernel directly (NFT_MSG_GETTABLE or NFT_MSG_GETCHAIN on a
NETLINK_NETFILTER socket, stdlib only) costs microseconds; `nft -j list table` or
`iptables-save` costs a process. Any surprise answers None: the caller cannot skip the program.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE, NFT_MSG_NEWCHAIN, NFT_MSG_GETCHAIN = 0, 1, 3, 4
NFTA_TABLE_NAME = 1
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME = 1, 3
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NFPROTO = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_NFGENMSG = struct.Struct("=BBH")  # family, version, resource id (big endian, 0)


def _attribute(kind: int, text: str) -> bytes:
    value = text.encode() + b"\0"
    attribute = struct.pack("=HH", 4 + len(value), kind) + value
    return attribute + b"\0" * (-len(attribute) % 4)


def _request(command: int, family: str, attributes: bytes, sequence: int) -> bytes:
    body = _NFGENMSG.pack(NFPROTO[family], 0, 0) + attributes
    message_type = (NFNL_SUBSYS_NFTABLES << 8) | command
    return _HEADER.pack(_HEADER.size + len(body), message_type, NLM_F_REQUEST | NLM_F_ACK, sequence, 0) + body


def render_get_table(family: str, table: str, sequence: int = 1) -> bytes:
    """The NFT_MSG_GETTABLE request for one table (pure, so it can be pinned by a test)."""
    return _request(NFT_MSG_GETTABLE, family, _attribute(NFTA_TABLE_NAME, table), sequence)


def render_get_chain(family: str, table: str, chain: str, sequence: int = 1) -> bytes:
    """The NFT_MSG_GETCHAIN request for one chain of one table."""
    attributes = _attribute(NFTA_CHAIN_TABLE, table) + _attribute(NFTA_CHAIN_NAME, chain)
    return _request(NFT_MSG_GETCHAIN, family, attributes, sequence)


def parse_reply(reply: bytes) -> bool | None:
    """True for the table or chain itself, False for "no such table or chain", None for
    anything else."""
    if len(reply) < _HEADER.size:
        return None
    _length, message_type, _flags, _sequence, _port = _HEADER.unpack_from(reply)
    if message_type in ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN):
        return True
    if message_type == NLMSG_ERROR and len(reply) >= _HEADER.size + 4:
        (error,) = struct.unpack_from("=i", reply, _HEADER.size)
        return False if error == -errno.ENOENT else None
    return None


def table_exists(family: str, table: str) -> bool | None:
    """Ask the kernel (in the current netns) whether `family table` exists; None if unsure."""
    return _ask(render_get_table(family, table, sequence=_sequence()))


def chain_exists(family: str, table: str, chain: str) -> bool | None:
    """Ask the kernel (in the current netns) whether `family table` has `chain`; None if unsure."""
    return _ask(render_get_chain(family, table, chain, sequence=_sequence()))


def _sequence() -> int:
    return os.getpid() & 0xFFFF or 1


def _ask(request: bytes) -> bool | None:
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
            sock.settimeout(1.0)
            sock.bind((0, 0))
            sock.send(request)
            return parse_reply(sock.recv(65536))
    except OSError:
        return None
