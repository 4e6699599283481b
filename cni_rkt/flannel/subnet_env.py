"""flanneld's `subnet.env`: the node's share of the cluster network.

flanneld writes `KEY=VALUE` lines, for example

    FLANNEL_NETWORK=10.1.0.0/16
    FLANNEL_SUBNET=10.1.17.1/24
    FLANNEL_MTU=1450
    FLANNEL_IPMASQ=true

Parsing accepts what the reference plugin accepts: lines end at a newline (CRLF too),
each line is split on its first `=`, values are taken as written (no quotes, no
trimming), unknown keys ignored, a later line overriding an earlier one.
FLANNEL_NETWORK and FLANNEL_IPV6_NETWORK hold one or more comma-separated CIDRs (repeats
dropped); the subnets may carry host bits (flanneld writes the gateway address,
10.1.17.1/24) and are kept as their network, 10.1.17.0/24.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.ipam.ranges import parse_cidr

DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env"

_UINT32 = re.compile(r"^[0-9]+$")
_KEYS = (
    "FLANNEL_NETWORK",
    "FLANNEL_SUBNET",
    "FLANNEL_IPV6_NETWORK",
    "FLANNEL_IPV6_SUBNET",
    "FLANNEL_MTU",
    "FLANNEL_IPMASQ",
)


@dataclass(frozen=True, slots=True)
class SubnetEnv:
    """What flanneld told this node; CIDRs in canonical network form ("10.1.17.0/24")."""

    networks: tuple[str, ...]
    subnet: str | None
    ipv6_networks: tuple[str, ...]
    ipv6_subnet: str | None
    mtu: int
    ipmasq: bool  # true when flanneld masquerades, so the delegate must not


def _cidr(path: str, key: str, value: str) -> str:
    try:
        # As strict as Go's ParseCIDR: no bare address, netmask or zone, which ipaddress takes.
        address, prefix = parse_cidr(value)
        return str(ipaddress.ip_network((address, prefix), strict=False))
    except ValueError:
        raise CNIError(
            ErrorCode.INVALID_NETWORK_CONFIG, f"{path}: {key}: invalid CIDR address: {value}"
        ) from None


def _cidr_list(path: str, key: str, value: str) -> tuple[str, ...]:
    networks: list[str] = []
    for item in value.split(","):
        network = _cidr(path, key, item)
        if network not in networks:
            networks.append(network)
    return tuple(networks)


def _mtu(path: str, value: str) -> int:
    if not _UINT32.match(value) or int(value) >= 2**32:
        raise CNIError(
            ErrorCode.INVALID_NETWORK_CONFIG, f"{path}: FLANNEL_MTU: not an unsigned integer: {value!r}"
        )
    return int(value)


def _missing_keys(values: dict) -> list[str]:
    """The absent keys, named as the reference names them (a family pair when neither is set)."""
    missing: list[str] = []
    if not values.get("FLANNEL_NETWORK") and not values.get("FLANNEL_IPV6_NETWORK"):
        missing += ["FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK"]
    if "FLANNEL_SUBNET" not in values and "FLANNEL_IPV6_SUBNET" not in values:
        missing += ["FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"]
    missing += [key for key in ("FLANNEL_MTU", "FLANNEL_IPMASQ") if key not in values]
    return missing


def _lines(text: str) -> list[str]:
    """Lines as Go's bufio.Scanner cuts them: at each newline, dropping one carriage return
    before it. Not splitlines(), which also ends a line at a lone CR, a form feed or U+2028."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse_subnet_env(text: str, path: str = DEFAULT_SUBNET_FILE) -> SubnetEnv:
    """Parse the file's text; `path` only names the file in errors."""
    values: dict = {}
    for line in _lines(text):
        key, sep, value = line.partition("=")
        if key not in _KEYS:
            continue
        if not sep:
            raise CNIError(ErrorCode.INVALID_NETWORK_CONFIG, f"{path}: {key} has no value (expected {key}=...)")
        if key in ("FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK"):
            values[key] = _cidr_list(path, key, value)
        elif key in ("FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"):
            values[key] = _cidr(path, key, value)
        elif key == "FLANNEL_MTU":
            values[key] = _mtu(path, value)
        else:
            values[key] = value == "true"  # anything but exactly "true" is false, as in the reference
    missing = _missing_keys(values)
    if missing:
        raise CNIError(
            ErrorCode.INVALID_NETWORK_CONFIG,
            f"loadFlannelSubnetEnv failed: {path} is missing {', '.join(missing)}",
        )
    return SubnetEnv(
        networks=values.get("FLANNEL_NETWORK", ()),
        subnet=values.get("FLANNEL_SUBNET"),
        ipv6_networks=values.get("FLANNEL_IPV6_NETWORK", ()),
        ipv6_subnet=values.get("FLANNEL_IPV6_SUBNET"),
        mtu=values["FLANNEL_MTU"],
        ipmasq=values["FLANNEL_IPMASQ"],
    )


def load_subnet_env(path: str = DEFAULT_SUBNET_FILE) -> SubnetEnv:
    """Read and parse the file. Absent means flanneld has not written it yet: code 11."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise CNIError(
            ErrorCode.TRY_AGAIN_LATER,
            f"loadFlannelSubnetEnv failed: open {path}: no such file or directory",
            "flanneld writes this file once it has leased the node's subnet; is flanneld running? try again later",
        ) from None
    except OSError as exc:
        raise CNIError(
            ErrorCode.IO_FAILURE, f"loadFlannelSubnetEnv failed: open {path}: {os.strerror(exc.errno or 0)}"
        ) from exc
    return parse_subnet_env(raw.decode("utf-8", errors="replace"), path)
