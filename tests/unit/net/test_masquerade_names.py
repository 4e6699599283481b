"""ipMasq names must equal the reference Go plugins' so either implementation removes the other's rules."""

from __future__ import annotations

import hashlib

import pytest

from cni_rkt.net.masquerade_names import (
    chain_name,
    go_quote,
    hash_with_prefix,
    iptables_comment,
    nft_comment,
    nft_instance_hash,
    nft_network_hash,
)


@pytest.mark.parametrize(
    ("network", "container_id", "expected"),
    [
        # Made by Debian's Go bridge 1.1.1 (ipMasq ADD of container "abc123" in a sandbox).
        ("rkt.kubernetes.io", "abc123", "CNI-450745af60a98a8fda10c6aa"),
        # Pinned in the reference's pkg/utils tests.
        ("test", "1234", "CNI-2bbe0c48b91a7d1b8a6753a8"),
        ("testalongnamethatdoesnotmakesense", "1234", "CNI-374f33fe84ab0ed84dcdebe3"),
    ],
)
def test_chain_name_matches_the_reference(network, container_id, expected):
    assert chain_name(network, container_id) == expected


def test_chain_name_is_the_sha512_of_network_and_id_cut_to_28_characters():
    network, container_id = "kubenet", "f" * 64
    digest = hashlib.sha512((network + container_id).encode()).hexdigest()
    name = chain_name(network, container_id)
    assert name == "CNI-" + digest[:24]
    assert len(name) == 28
    assert chain_name(network, "f" * 63 + "e") != name


def test_iptables_comment_is_gos_quoted_form():
    assert iptables_comment("rkt.kubernetes.io", "abc123") == 'name: "rkt.kubernetes.io" id: "abc123"'
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'


def test_nft_hashes_are_16_hex_digits_of_sha512():
    net_hash = hashlib.sha512(b"mynet").hexdigest()[:16]
    instance = hashlib.sha512(b"eth0:cid1").hexdigest()[:16]
    assert nft_network_hash("mynet") == net_hash
    assert nft_instance_hash("mynet", "eth0", "cid1") == f"{net_hash}-{instance}"


def test_nft_comment_starts_with_the_instance_hash_and_reads_well():
    comment = nft_comment("mynet", "eth0", "cid1")
    assert comment == f"{nft_instance_hash('mynet', 'eth0', 'cid1')}, net: mynet, if: eth0, id: cid1"


def test_nft_comment_is_cut_to_the_kernel_limit():
    comment = nft_comment("mynet", "eth0", "c" * 200)
    assert len(comment) == 128
    assert comment.startswith(nft_instance_hash("mynet", "eth0", "c" * 200) + ", net: mynet, if: eth0, id: ccc")


def test_hash_with_prefix_refuses_impossible_lengths():
    with pytest.raises(ValueError):
        hash_with_prefix(3, "CNI-", "x")
    with pytest.raises(ValueError):
        hash_with_prefix(200, "", "x")
