"""How many firewall programs ADD and DEL run, and what they do when the state is unexpected.

The firewall adapter is replaced by a recorder over a fake nat table, so these tests need
neither root nor iptables; tests/netns/test_masquerade.py runs the real programs.
"""

from __future__ import annotations

import pytest

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.net import firewall, masquerade
from cni_rkt.net import masquerade_iptables as ipt
from cni_rkt.net.masquerade_names import NFT_TABLE

NET, CID = "rkt.kubernetes.io", "abc123"
_BUILTIN_TARGETS = {"ACCEPT", "MASQUERADE"}


class FakeFirewall:
    """Records each program run; refuses a restore script the way iptables-restore does."""

    def __init__(self, monkeypatch, tools=("iptables-restore", "ip6tables-restore", "nft"), lock_held=False,
                 netlink_sees_chains=True):
        self.calls: list[tuple] = []
        self.tables = {4: ipt.NatTable({"POSTROUTING"}), 6: ipt.NatTable({"POSTROUTING"})}
        self.lock_held = lock_held
        # iptables-nft's chains are visible over netlink; iptables-legacy's are not (None)
        monkeypatch.setattr(firewall, "nat_chain_exists",
                            lambda version, chain: chain in self.tables[version].chains if netlink_sees_chains else None)
        monkeypatch.setattr(firewall, "find_tool", lambda name: f"/sbin/{name}" if name in tools else None)
        monkeypatch.setattr(firewall, "restore_nat", self.restore_nat)
        monkeypatch.setattr(firewall, "save_nat", self.save_nat)
        monkeypatch.setattr(firewall, "nft_list_table", self.nft_list_table)
        monkeypatch.setattr(firewall, "nft_apply", lambda script, dies_with_us=False: self.calls.append(("nft -f", script)))

    def nft_list_table(self, family, table, run_when_unsure=True):
        """No nftables table here, and netlink taken as unable to tell: each look-up that
        may run nft is recorded."""
        if run_when_unsure:
            self.calls.append(("nft list",))

    def save_nat(self, version):
        self.calls.append(("save", version))
        table = self.tables[version]
        chains = "".join(f":{c} - [0:0]\n" for c in sorted(table.chains))
        rules = "".join(f"{ipt._rule_line('-A', r)}\n" for r in table.rules)
        return f"*nat\n{chains}{rules}COMMIT\n"

    def restore_nat(self, version, script, dies_with_us=False):
        self.calls.append(("restore", version))
        if self.lock_held:
            return CNIError(ErrorCode.TRY_AGAIN_LATER, "iptables-restore failed: xtables lock")
        table = self.tables[version]
        chains, rules = set(table.chains), list(table.rules)
        for line in script.splitlines()[1:-1]:  # between *nat and COMMIT
            if not self._apply(chains, rules, line):
                return CNIError(ErrorCode.INTERNAL, f"refused: {line}")  # nothing applied
        table.chains, table.rules = chains, rules
        return None

    @staticmethod
    def _apply(chains: set, rules: list, line: str) -> bool:
        verb, rest = line[:2], line[3:]
        if verb in ("-N", "-F", "-X"):
            exists = rest in chains
            if verb == "-N" and not exists:
                chains.add(rest)
            elif verb == "-F" and exists:
                rules[:] = [r for r in rules if r.chain != rest]
            elif verb == "-X" and exists and not any(r.target == rest for r in rules):
                chains.discard(rest)
            else:
                return False
            return True
        rule = ipt.parse_save(f"*nat\n-A {rest}\n").rules[0]
        if verb == "-A" and rule.chain in chains and (rule.target in _BUILTIN_TARGETS or rule.target in chains):
            rules.append(rule)
            return True
        if verb == "-D" and rule in rules:
            rules.remove(rule)
            return True
        return False

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call[0] == kind)


@pytest.fixture
def fake(monkeypatch):
    return FakeFirewall(monkeypatch)


def test_add_runs_one_restore_for_a_v4_pod(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    assert fake.calls == [("restore", 4)]
    assert len(fake.tables[4].rules) == 3


def test_add_runs_one_restore_per_family_for_a_dual_stack_pod(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16", "2001:db8::2/64"], "iptables")
    assert fake.calls == [("restore", 4), ("restore", 6)]


def test_a_retried_add_adds_no_duplicate(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    before = list(fake.tables[4].rules)
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    assert fake.tables[4].rules == before
    assert fake.calls[1:] == [("restore", 4), ("save", 4)]  # refused, read, nothing to append


def test_a_retried_add_restores_a_deleted_rule(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    jump = next(r for r in fake.tables[4].rules if r.chain == "POSTROUTING")
    fake.tables[4].rules.remove(jump)
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    assert fake.tables[4].rules[-1] == jump and len(fake.tables[4].rules) == 3


def test_del_of_what_add_made_is_one_restore_plus_the_nft_look_up(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    fake.calls.clear()
    masquerade.remove_masquerade(NET, CID, "eth0", ["10.22.0.2/16"])
    assert fake.calls == [("restore", 4), ("nft list",)]
    assert fake.tables[4].rules == [] and fake.tables[4].chains == {"POSTROUTING"}


def test_del_twice_and_del_without_addresses_converge(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16", "10.22.0.3/16"], None)
    masquerade.remove_masquerade(NET, CID, "eth0", [])
    assert fake.tables[4].rules == [] and fake.tables[4].chains == {"POSTROUTING"}
    masquerade.remove_masquerade(NET, CID, "eth0", ["10.22.0.2/16"])


def test_del_with_ipmasq_off_now_removes_what_an_earlier_config_made(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16", "2001:db8::2/64"], None)
    fake.calls.clear()
    masquerade.remove_masquerade(NET, CID, "eth0", [], False)
    assert fake.tables[4].rules == fake.tables[6].rules == []
    masquerade.remove_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], False)
    assert [c for c in fake.calls if c[0] != "save"] == [("restore", 4), ("restore", 6)]  # none the 2nd time


def test_del_with_ipmasq_off_and_chains_netlink_cannot_see_runs_nothing(monkeypatch):
    """iptables-legacy: looking would cost a program per DEL of every ipMasq-less network."""
    fake = FakeFirewall(monkeypatch, netlink_sees_chains=False)
    masquerade.remove_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], False)
    assert fake.calls == []
    masquerade.remove_masquerade(NET, CID, "eth0", [])  # ipMasq on, no address: look everywhere
    assert fake.calls == [("save", 4), ("save", 6), ("nft list",)]


def test_del_with_ipmasq_off_asks_the_kernel_about_the_nft_table_once(fp, monkeypatch):
    """The table is there (an earlier config's): one netlink question, then one listing."""
    probes = []
    monkeypatch.setattr("cni_rkt.net.nft_probe.table_exists", lambda family, table: probes.append(table) or True)
    monkeypatch.setattr(firewall, "find_tool", lambda name: f"/sbin/{name}" if name == "nft" else None)
    fp.register(["/sbin/nft", "-j", "list", "table", "inet", NFT_TABLE], stdout='{"nftables": []}')
    masquerade.remove_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], False)
    assert probes == [NFT_TABLE] and len(fp.calls) == 1


def test_del_of_one_interface_keeps_the_chain_the_containers_other_interface_jumps_to(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    masquerade.setup_masquerade(NET, CID, "eth1", ["10.22.0.3/16"], None)
    masquerade.remove_masquerade(NET, CID, "eth1", ["10.22.0.3/16"])
    assert masquerade.masquerade_problems(NET, CID, "eth0", ["10.22.0.2/16"], None) == []
    assert len(fake.tables[4].rules) == 3
    masquerade.remove_masquerade(NET, CID, "eth0", ["10.22.0.2/16"])
    assert fake.tables[4].rules == [] and fake.tables[4].chains == {"POSTROUTING"}


def test_del_removes_the_legacy_subnet_jump(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    chain = masquerade.chain_name(NET, CID)
    fake.tables[4].rules.append(ipt.Rule("POSTROUTING", ("-s", "10.22.0.0/16", "-j", chain)))
    masquerade.remove_masquerade(NET, CID, "eth0", ["10.22.0.2/16"])
    assert fake.tables[4].rules == []


def test_a_held_xtables_lock_is_try_again_later(monkeypatch):
    FakeFirewall(monkeypatch, lock_held=True)
    with pytest.raises(CNIError) as caught:
        masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    assert caught.value.code == ErrorCode.TRY_AGAIN_LATER


def test_default_backend_is_iptables_unless_only_nft_is_installed(monkeypatch):
    FakeFirewall(monkeypatch)
    assert masquerade.resolve_backend(None) == "iptables"
    FakeFirewall(monkeypatch, tools=("nft",))
    assert masquerade.resolve_backend(None) == "nftables"


def test_an_unknown_backend_is_an_invalid_config_naming_the_key():
    with pytest.raises(CNIError) as caught:
        masquerade.resolve_backend("pf")
    assert caught.value.code == ErrorCode.INVALID_NETWORK_CONFIG
    assert "pf" in caught.value.msg and "ipMasqBackend" in caught.value.details


def test_nft_add_is_one_look_up_and_one_transaction(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], "nftables")
    assert [c[0] for c in fake.calls] == ["nft list", "nft -f"]
    assert "ip saddr == 10.22.0.2 ip daddr != 10.22.0.0/16 masquerade" in fake.calls[1][1]


def test_problems_lists_what_add_made_and_is_gone(fake):
    masquerade.setup_masquerade(NET, CID, "eth0", ["10.22.0.2/16"], None)
    assert masquerade.masquerade_problems(NET, CID, "eth0", ["10.22.0.2/16"], None) == []
    fake.tables[4].rules = [r for r in fake.tables[4].rules if r.chain != "POSTROUTING"]
    (problem,) = masquerade.masquerade_problems(NET, CID, "eth0", ["10.22.0.2/16"], None)
    assert problem.startswith("ipMasq (iptables): missing rule in table nat: -A POSTROUTING -s 10.22.0.2/32")


def test_gc_removes_only_invalid_attachments_of_the_network(fake):
    for cid, address in (("keep", "10.22.0.2/16"), ("stale", "10.22.0.3/16")):
        masquerade.setup_masquerade(NET, cid, "eth0", [address], None)
    masquerade.setup_masquerade("othernet", "stale", "eth0", ["10.9.0.3/16"], None)
    assert masquerade.gc_masquerade(NET, {("keep", "eth0")}) == []
    owners = {ipt.parse_comment(r.comment) for r in fake.tables[4].rules}
    assert owners == {(NET, "keep"), ("othernet", "stale")}


def test_gc_reports_errors_and_keeps_going(monkeypatch):
    fake = FakeFirewall(monkeypatch)
    masquerade.setup_masquerade(NET, "stale", "eth0", ["10.22.0.3/16"], None)
    fake.lock_held = True
    errors = masquerade.gc_masquerade(NET, set())
    assert len(errors) == 1 and "xtables lock" in errors[0]
    assert ("nft list",) in fake.calls  # the nftables form was still collected
