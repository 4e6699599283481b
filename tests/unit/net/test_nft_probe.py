"""The netlink request that tells whether an nftables table exists, and how its reply is read."""

from __future__ import annotations

import errno
import struct

from cni_rkt.net import nft_probe


def test_get_table_request_bytes():
    request = nft_probe.render_get_table("inet", "t1", sequence=7)
    length, message_type, flags, sequence, port = struct.unpack_from("=IHHII", request)
    assert (length, message_type, flags, sequence, port) == (len(request), (10 << 8) | 1, 0x5, 7, 0)
    assert request[16:20] == bytes([1, 0, 0, 0])  # nfgenmsg: NFPROTO_INET, version 0, resource 0
    assert request[20:] == struct.pack("=HH", 7, 1) + b"t1\0" + b"\0"  # NFTA_TABLE_NAME, padded to 4


def test_get_chain_request_bytes():
    request = nft_probe.render_get_chain("ip6", "nat", "CNI-1", sequence=7)
    length, message_type, flags, _sequence, _port = struct.unpack_from("=IHHII", request)
    assert (length, message_type, flags) == (len(request), (10 << 8) | 4, 0x5)
    assert request[16:20] == bytes([10, 0, 0, 0])  # NFPROTO_IPV6
    table = struct.pack("=HH", 8, 1) + b"nat\0"  # NFTA_CHAIN_TABLE
    chain = struct.pack("=HH", 10, 3) + b"CNI-1\0" + b"\0\0"  # NFTA_CHAIN_NAME, padded to 4
    assert request[20:] == table + chain


def reply(message_type: int, payload: bytes = b"") -> bytes:
    return struct.pack("=IHHII", 16 + len(payload), message_type, 0, 7, 0) + payload


def test_replies():
    assert nft_probe.parse_reply(reply((10 << 8) | 0, b"\1\0\0\0")) is True
    assert nft_probe.parse_reply(reply((10 << 8) | 3, b"\2\0\0\0")) is True  # the chain
    assert nft_probe.parse_reply(reply(2, struct.pack("=i", -errno.ENOENT))) is False
    assert nft_probe.parse_reply(reply(2, struct.pack("=i", -errno.EPERM))) is None
    assert nft_probe.parse_reply(b"") is None
