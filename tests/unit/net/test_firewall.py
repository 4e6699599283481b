"""The firewall adapter: the flags it passes and how a tool's failure becomes a CNIError."""

from __future__ import annotations

import pytest

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.net import firewall


@pytest.fixture(autouse=True)
def tools_in_sbin(monkeypatch):
    monkeypatch.setattr(firewall, "find_tool", lambda name: f"/sbin/{name}")
    monkeypatch.setattr(firewall, "_setpriv_lacks_pdeathsig", False)  # each test's own "process"


def test_restore_uses_noflush_and_the_xtables_lock(fp):
    fp.register(["/sbin/iptables-restore", "--noflush", f"--wait={firewall.XTABLES_LOCK_WAIT_SECONDS}"])
    assert firewall.restore_nat(4, "*nat\nCOMMIT\n") is None
    assert fp.calls[0][0] == "/sbin/iptables-restore"


def test_a_program_that_must_die_with_us_runs_under_setpriv(fp):
    """ADD's rules: a program outliving its killed plugin would make them after the runtime's DEL."""
    restore = ["/sbin/iptables-restore", "--noflush", f"--wait={firewall.XTABLES_LOCK_WAIT_SECONDS}"]
    fp.register(["/sbin/setpriv", "--pdeathsig", "KILL", "--", *restore])
    assert firewall.restore_nat(4, "*nat\nCOMMIT\n", dies_with_us=True) is None
    assert len(fp.calls) == 1


def test_a_setpriv_without_pdeathsig_runs_the_program_itself(fp):
    fp.register(["/sbin/setpriv", fp.any()], returncode=1, stderr="setpriv: unrecognized option '--pdeathsig'\n")
    fp.register(["/sbin/nft", "-f", "-"])
    firewall.nft_apply("", dies_with_us=True)
    assert [call[0] for call in fp.calls] == ["/sbin/setpriv", "/sbin/nft"]


def test_a_setpriv_without_pdeathsig_is_not_tried_again(fp):
    """A worker serves many ADDs: one refused setpriv is enough."""
    fp.register(["/sbin/setpriv", fp.any()], returncode=1, stderr="setpriv: unrecognized option '--pdeathsig'\n")
    fp.register(["/sbin/nft", "-f", "-"], occurrences=2)
    firewall.nft_apply("", dies_with_us=True)
    firewall.nft_apply("", dies_with_us=True)
    assert [call[0] for call in fp.calls] == ["/sbin/setpriv", "/sbin/nft", "/sbin/nft"]


def test_a_held_xtables_lock_is_try_again_later(fp):
    fp.register(
        ["/sbin/ip6tables-restore", fp.any()], returncode=4,
        stderr="Another app is currently holding the xtables lock. Stopped waiting after 30s.\n",
    )
    failure = firewall.restore_nat(6, "*nat\nCOMMIT\n")
    assert failure.code == ErrorCode.TRY_AGAIN_LATER
    assert "ip6tables-restore failed: Another app" in failure.msg


def test_other_failures_are_internal_with_the_tools_message(fp):
    fp.register(["/sbin/iptables-save", "-t", "nat"], returncode=1, stderr="iptables-save: permission denied\n")
    with pytest.raises(CNIError) as caught:
        firewall.save_nat(4)
    assert caught.value.code == ErrorCode.INTERNAL
    assert caught.value.msg == "iptables-save failed: iptables-save: permission denied"


def test_a_missing_nft_table_is_none(fp, monkeypatch):
    monkeypatch.setattr("cni_rkt.net.nft_probe.table_exists", lambda family, table: None)  # unsure: run nft
    fp.register(["/sbin/nft", "-j", "list", "table", "inet", "t"], returncode=1,
                stderr="Error: No such file or directory\nlist table inet t\n")
    assert firewall.nft_list_table("inet", "t") is None


def test_a_look_up_told_not_to_run_nft_when_netlink_cannot_tell_runs_nothing(fp, monkeypatch):
    monkeypatch.setattr("cni_rkt.net.nft_probe.table_exists", lambda family, table: None)
    assert firewall.nft_list_table("inet", "t", run_when_unsure=False) is None
    assert len(fp.calls) == 0


def test_a_missing_tool_is_named(monkeypatch):
    monkeypatch.setattr(firewall, "find_tool", lambda name: None)
    with pytest.raises(CNIError, match="failed to locate nft"):
        firewall.nft_apply("")


@pytest.mark.parametrize(
    ("in_nftables", "legacy_tables", "expected"),
    [
        (True, "nat\n", True),  # iptables-nft made it: netlink sees it whatever legacy holds
        (False, None, False),  # ip_tables not loaded: only nftables could hold it
        (False, "filter\n", False),  # legacy in use, but not its nat table in this netns
        (False, "filter\nnat\n", None),  # a legacy nat table: its chains are not visible
        (None, None, None),  # netlink could not answer
        (False, "no /proc", None),  # /proc of another pid namespace: cannot tell
    ],
)
def test_whether_a_nat_chain_exists_is_told_without_a_program(fp, monkeypatch, tmp_path, in_nftables,
                                                              legacy_tables, expected):
    names = tmp_path / "net" / "ip_tables_names"
    if legacy_tables != "no /proc":
        names.parent.mkdir()
    if legacy_tables not in (None, "no /proc"):
        names.write_text(legacy_tables)
    monkeypatch.setitem(firewall._LEGACY_TABLE_NAMES, 4, str(names))
    monkeypatch.setattr("cni_rkt.net.nft_probe.chain_exists", lambda family, table, chain: in_nftables)
    assert firewall.nat_chain_exists(4, "CNI-x") is expected
    assert len(fp.calls) == 0
