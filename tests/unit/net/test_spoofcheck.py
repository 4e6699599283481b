"""macspoofchk names and nft scripts, pinned to the reference's layout (no root)."""

from cni_rkt.net import spoofcheck


def test_names_follow_the_reference():
    assert spoofcheck.chain_names("cid1", "eth0") == ("cni-br-iface-cid1-eth0", "cni-br-iface-cid1-eth0-mac")
    assert spoofcheck.comment("cid1", "eth0") == "macspoofchk-cid1-eth0"


def test_setup_is_one_transaction_that_empties_our_chains_before_adding_rules():
    lines = spoofcheck.setup_script("veth0123abcd", "02:00:00:00:00:01", "cid1", "eth0").splitlines()
    assert lines.index("flush chain bridge nat cni-br-iface-cid1-eth0-mac") < next(
        i for i, line in enumerate(lines) if line.startswith("add rule")
    )
    assert 'add rule bridge nat PREROUTING iifname "veth0123abcd" jump cni-br-iface-cid1-eth0 comment "macspoofchk-cid1-eth0"' in lines
    assert lines[-1] == 'add rule bridge nat cni-br-iface-cid1-eth0-mac drop comment "macspoofchk-cid1-eth0"'


def test_teardown_deletes_only_this_attachments_rule_and_chains():
    objects = [
        {"chain": {"name": "PREROUTING"}},
        {"chain": {"name": "cni-br-iface-cid1-eth0"}},
        {"chain": {"name": "cni-br-iface-cid1-eth0-mac"}},
        {"chain": {"name": "cni-br-iface-cid2-eth0"}},
        {"rule": {"chain": "PREROUTING", "handle": 4, "comment": "macspoofchk-cid1-eth0"}},
        {"rule": {"chain": "PREROUTING", "handle": 7, "comment": "macspoofchk-cid2-eth0"}},
    ]
    script = spoofcheck.teardown_script(objects, "cid1", "eth0")
    assert "handle 4" in script and "handle 7" not in script
    assert "delete chain bridge nat cni-br-iface-cid1-eth0-mac\ndelete chain bridge nat cni-br-iface-cid1-eth0\n" in script
    assert "cid2" not in script


def test_teardown_of_nothing_is_empty():
    assert spoofcheck.teardown_script([], "cid1", "eth0") == ""
