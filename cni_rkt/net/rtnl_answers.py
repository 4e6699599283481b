"""The kernel's answers to rtnl.py's requests, read lazily: only the fields and attributes
the plugins look at.

pyroute2 decodes a link answer into some forty attribute objects (statistics, per-family
settings, the bridge's whole state) before anything reads it: about 0.2 ms of Python per
link, and a pod ADD reads half a dozen links. An `Answer` indexes the attributes by type
with one struct pass and decodes a value when it is asked for. It answers like a pyroute2
message for what we use (`answer["index"]`, `answer.get_attr("IFLA_IFNAME")`), with the
kernel's attribute numbers (linux/if_link.h, if_addr.h, rtnetlink.h).
"""

from __future__ import annotations

import ipaddress
import struct
_NLA_HEADER = struct.Struct("=HH")  # length, type
_NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
_U32 = struct.Struct("=I")

# IF_OPER_* (RFC 2863 operational states), named as `ip link` and pyroute2 name them
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")


def _string(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode()


def _u32(value: bytes) -> int:
    return _U32.unpack_from(value)[0]


def _u8(value: bytes) -> int:
    return value[0]


def _mac(value: bytes) -> str:
    return ":".join(f"{b:02x}" for b in value)


def _ip(value: bytes) -> str:
    return str(ipaddress.ip_address(value))


def _operstate(value: bytes) -> str:
    return OPERSTATES[value[0]] if value[0] < len(OPERSTATES) else "UNKNOWN"


class Attributes:
    """The attributes in data[start:end], by name through `schema` (name -> (type, decoder))."""

    __slots__ = ("_data", "_spans", "_schema")

    def __init__(self, schema: dict, data: bytes, start: int, end: int) -> None:
        self._data, self._schema = data, schema
        self._spans: dict[int, tuple[int, int]] = {}
        offset = start
        while offset + _NLA_HEADER.size <= end:
            length, kind = _NLA_HEADER.unpack_from(data, offset)
            if length < _NLA_HEADER.size:
                break  # malformed: stop, as the kernel's own parser would
            # the first of a repeated type wins, as with pyroute2's get_attr
            self._spans.setdefault(kind & _NLA_TYPE_MASK, (offset + _NLA_HEADER.size, min(offset + length, end)))
            offset += (length + 3) & ~3

    def get_attr(self, name: str, default=None):
        kind, decode = self._schema[name]
        span = self._spans.get(kind)
        if span is None:
            return default
        start, end = span
        if isinstance(decode, dict):  # nested attributes
            return Attributes(decode, self._data, start, end)
        return decode(self._data[start:end])


class Answer(Attributes):
    """One answer: its fixed header (`answer["index"]` ...) and its attributes."""

    __slots__ = ("_fields",)

    def __init__(self, layout: tuple[struct.Struct, tuple[str, ...], dict], data: bytes) -> None:
        header, names, schema = layout
        fields_start = 16  # after the nlmsghdr
        self._fields = dict(zip(names, header.unpack_from(data, fields_start)))
        attrs_start = fields_start + ((header.size + 3) & ~3)
        super().__init__(schema, data, attrs_start, len(data))

    def __getitem__(self, field: str):
        return self._fields[field]


_BRIDGE_PORT = {"IFLA_BRPORT_MODE": (4, _u8), "IFLA_BRPORT_ISOLATED": (33, _u8)}
_LINK_INFO = {
    "IFLA_INFO_KIND": (1, _string),
    "IFLA_INFO_SLAVE_KIND": (4, _string),
    "IFLA_INFO_SLAVE_DATA": (5, _BRIDGE_PORT),  # what we read of it: a bridge port's flags
}
# struct ifinfomsg: family, pad, type, index, flags, change
LINK = (
    struct.Struct("=BxHiII"),
    ("family", "ifi_type", "index", "flags", "change"),
    {
        "IFLA_ADDRESS": (1, _mac),
        "IFLA_IFNAME": (3, _string),
        "IFLA_MTU": (4, _u32),
        "IFLA_LINK": (5, _u32),
        "IFLA_MASTER": (10, _u32),
        "IFLA_OPERSTATE": (16, _operstate),
        "IFLA_LINKINFO": (18, _LINK_INFO),
    },
)
# struct ifaddrmsg: family, prefixlen, flags, scope, index
ADDRESS = (
    struct.Struct("=BBBBI"),
    ("family", "prefixlen", "flags", "scope", "index"),
    {"IFA_ADDRESS": (1, _ip), "IFA_LOCAL": (2, _ip), "IFA_FLAGS": (8, _u32)},
)
# struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
ROUTE = (
    struct.Struct("=BBBBBBBBI"),
    ("family", "dst_len", "src_len", "tos", "table", "proto", "scope", "type", "flags"),
    {"RTA_DST": (1, _ip), "RTA_OIF": (4, _u32), "RTA_GATEWAY": (5, _ip), "RTA_PRIORITY": (6, _u32), "RTA_TABLE": (15, _u32)},
)
