"""Names and comments of the ipMasq rules, exactly as the reference Go plugins make them.

Pure and stdlib-only. Rules made by either implementation carry the same names, so each
one finds and removes the other's:

    iptables chain    "CNI-" + first 24 hex digits of sha512(network + container id)
    iptables comment  name: "<network>" id: "<container id>"
    nftables comment  <sha512(network)[:16]>-<sha512(ifname:container id)[:16]>, net: ..., if: ..., id: ...
                      (table inet cni_plugins_masquerade, chain masq_checks)
"""

from __future__ import annotations

import hashlib

from cni_rkt.errors import go_quote  # the reference writes the comment with %q

CHAIN_PREFIX = "CNI-"
MAX_CHAIN_LENGTH = 28  # iptables allows 28 characters for a chain name

NFT_TABLE = "cni_plugins_masquerade"
NFT_MASQ_CHAIN = "masq_checks"
NFT_POSTROUTING_CHAIN = "postrouting"
NFT_TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
NFT_MASQ_CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"
NFT_COMMENT_MAX_LENGTH = 128  # the kernel keeps at most 128 bytes of a rule comment
_NFT_HASH_LENGTH = 16


def hash_with_prefix(length: int, prefix: str, text: str) -> str:
    """`prefix` followed by the hex sha512 of `text`, cut to `length` characters."""
    digest = hashlib.sha512(text.encode()).hexdigest()
    if len(prefix) >= length or length > len(digest):
        raise ValueError(f"invalid hash length {length} for prefix {prefix!r}")
    return (prefix + digest)[:length]


def chain_name(network: str, container_id: str) -> str:
    """The iptables chain of one attachment; the reference ignores ifname here."""
    return hash_with_prefix(MAX_CHAIN_LENGTH, CHAIN_PREFIX, network + container_id)


def iptables_comment(network: str, container_id: str) -> str:
    return f"name: {go_quote(network)} id: {go_quote(container_id)}"


def nft_network_hash(network: str) -> str:
    return hash_with_prefix(_NFT_HASH_LENGTH, "", network)


def nft_instance_hash(network: str, ifname: str, container_id: str) -> str:
    return nft_network_hash(network) + "-" + hash_with_prefix(_NFT_HASH_LENGTH, "", f"{ifname}:{container_id}")


def nft_comment(network: str, ifname: str, container_id: str) -> str:
    """The comment on each nftables masquerade rule: a hash to match on, then a readable tail."""
    readable = ", ".join(
        f"{label}: {value.replace(chr(34), '')}"
        for label, value in (("net", network), ("if", ifname), ("id", container_id))
    )
    comment = f"{nft_instance_hash(network, ifname, container_id)}, {readable}"
    return comment.encode()[:NFT_COMMENT_MAX_LENGTH].decode(errors="ignore")
