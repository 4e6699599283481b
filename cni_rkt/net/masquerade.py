"""ipMasq: masquerade a pod's traffic leaving its subnet, with the reference's exact rules.

    setup_masquerade      ADD: iptables (default) or nftables rules for the pod's addresses
    remove_masquerade     DEL: both forms, whoever made them, also once the config has ipMasq off;
                          absence is fine
    masquerade_problems   CHECK: what ADD made and is gone (empty list when all is there)
    gc_masquerade         GC: rules of attachments no longer valid, found by their comments

Acts in the current network namespace. Where the Go bridge runs iptables nine times per
ADD and six per DEL, an ADD here is one `iptables-restore --noflush` (per address family),
and so is a DEL of what ADD made; the script is atomic, and when the state is not what it
expects (a retried ADD, a DEL twice, rules from an older plugin) it is refused whole and
we read the nat table once and plan again from what is there.
"""

from __future__ import annotations

import ipaddress

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.net import firewall
from cni_rkt.net import masquerade_iptables as ipt
from cni_rkt.net import masquerade_nft as nft
from cni_rkt.net.masquerade_names import NFT_TABLE, chain_name, iptables_comment, nft_comment, nft_instance_hash

BACKENDS = ("iptables", "nftables")
_FAMILY_TOOL = {4: "iptables", 6: "ip6tables"}


def resolve_backend(backend: str | None) -> str:
    """The reference's choice: iptables, unless only nftables is installed."""
    if backend is None:
        only_nft = firewall.find_tool(firewall.RESTORE[4]) is None and firewall.find_tool(firewall.NFT) is not None
        return "nftables" if only_nft else "iptables"
    if backend not in BACKENDS:
        raise CNIError(ErrorCode.INVALID_NETWORK_CONFIG, f'unknown ipmasq backend "{backend}"',
                       f"ipMasqBackend must be one of {', '.join(BACKENDS)}")
    return backend


def _interfaces(addresses: list[str]) -> list:
    try:
        return [ipaddress.ip_interface(a) for a in addresses]
    except ValueError as exc:
        raise CNIError(ErrorCode.INTERNAL, f"ipMasq: invalid address: {exc}") from exc


def _by_family(interfaces: list) -> dict[int, list]:
    groups: dict[int, list] = {}
    for interface in interfaces:
        groups.setdefault(interface.version, []).append(interface)
    return groups


def _nft_rules(run_when_unsure: bool = True) -> list[nft.NftRule]:
    listing = firewall.nft_list_table("inet", NFT_TABLE, run_when_unsure)
    return nft.parse_table(listing) if listing is not None else []


# ---- ADD -------------------------------------------------------------------------------

def setup_masquerade(network: str, container_id: str, ifname: str, addresses: list[str], backend: str | None) -> None:
    interfaces = _interfaces(addresses)
    if resolve_backend(backend) == "nftables":
        stale = nft.rules_with_prefix(_nft_rules(), nft_instance_hash(network, ifname, container_id))
        firewall.nft_apply(nft.render_setup(interfaces, nft_comment(network, ifname, container_id),
                                            [r.handle for r in stale]), dies_with_us=True)
        return
    # The iptables form ignores ifname, as the reference does.
    chain, comment = chain_name(network, container_id), iptables_comment(network, container_id)
    for version, group in _by_family(interfaces).items():
        _setup_family(version, chain, ipt.desired_rules(group, chain, comment))


def _setup_family(version: int, chain: str, rules: list[ipt.Rule]) -> None:
    failure = firewall.restore_nat(version, ipt.render_restore(ipt.plan_create(chain, rules)), dies_with_us=True)
    if failure is None:
        return
    table = ipt.parse_save(firewall.save_nat(version), naming=chain)
    if chain not in table.chains:
        raise failure  # refused for another reason than an earlier ADD
    lines = ipt.plan_append_missing(table, chain, rules)
    if lines and (failure := firewall.restore_nat(version, ipt.render_restore(lines), dies_with_us=True)):
        raise failure


# ---- DEL -------------------------------------------------------------------------------

def remove_masquerade(network: str, container_id: str, ifname: str, addresses: list[str], ip_masq: bool = True) -> None:
    """Remove both forms, whoever made them. Where the kernel can tell (over netlink) whether
    the chain or the nftables table is there, that decides: a retried DEL or one of an
    ipMasq-less config usually runs no program. Where it cannot (iptables-legacy), a family
    is torn down from its addresses, or searched when no address is known at all; with
    `ip_masq` False (the config no longer asks for it, an earlier one may have), not at all."""
    interfaces = _interfaces(addresses)
    chain, comment = chain_name(network, container_id), iptables_comment(network, container_id)
    groups = _by_family(interfaces)
    errors: list[CNIError] = []
    for version in (4, 6):
        group = groups.get(version, [])
        if firewall.find_tool(firewall.RESTORE[version]) and _worth_a_look(version, chain, group, ip_masq, interfaces):
            _collect(errors, _remove_family, version, chain, comment, group)
    if firewall.find_tool(firewall.NFT):
        _collect(errors, _remove_nft, nft_instance_hash(network, ifname, container_id), ip_masq)
    if errors:
        raise CNIError(errors[0].code, "ipMasq tear-down failed: " + "; ".join(e.msg for e in errors))


def _worth_a_look(version: int, chain: str, group: list, ip_masq: bool, interfaces: list) -> bool:
    present = firewall.nat_chain_exists(version, chain)
    if present is not None:
        return present
    return ip_masq and (bool(group) or not interfaces)


def _collect(errors: list[CNIError], step, *args) -> None:
    try:
        step(*args)
    except CNIError as error:
        errors.append(error)


def _remove_family(version: int, chain: str, comment: str, group: list) -> None:
    if group:
        jumps = [r for r in ipt.desired_rules(group, chain, comment) if r.chain == ipt.POSTROUTING]
        if firewall.restore_nat(version, ipt.render_restore(ipt.plan_remove_known(chain, jumps))) is None:
            return
    table = ipt.parse_save(firewall.save_nat(version), naming=chain)
    if group:
        lines = ipt.plan_remove_attachment(table, chain, ipt.jump_sources(group))
    else:  # nothing tells this attachment's jumps from another interface's
        lines = ipt.plan_remove_found(table, {chain})
    if lines and (failure := firewall.restore_nat(version, ipt.render_restore(lines))):
        raise failure


def _remove_nft(instance_hash: str, ip_masq: bool) -> None:
    handles = [r.handle for r in nft.rules_with_prefix(_nft_rules(run_when_unsure=ip_masq), instance_hash)]
    if handles:
        firewall.nft_apply(nft.render_delete(handles))


# ---- CHECK and GC ----------------------------------------------------------------------

def masquerade_problems(network: str, container_id: str, ifname: str, addresses: list[str],
                        backend: str | None) -> list[str]:
    interfaces = _interfaces(addresses)
    if resolve_backend(backend) == "nftables":
        found = nft.problems(_nft_rules(), interfaces, nft_comment(network, ifname, container_id))
        return [f"ipMasq (nftables): {p}" for p in found]
    chain, comment = chain_name(network, container_id), iptables_comment(network, container_id)
    problems = []
    for version, group in _by_family(interfaces).items():
        table = ipt.parse_save(firewall.save_nat(version), naming=chain)
        found = ipt.missing_rules(table, chain, ipt.desired_rules(group, chain, comment))
        problems += [f"ipMasq ({_FAMILY_TOOL[version]}): {p}" for p in found]
    return problems


def gc_masquerade(network: str, valid: set[tuple[str, str]]) -> list[str]:
    """Remove the rules of this network's attachments not in `valid` ((container id, ifname)
    pairs); keep going after a failure and return the errors."""
    errors: list[CNIError] = []
    valid_ids = {container_id for container_id, _ifname in valid}
    for version in (4, 6):
        if firewall.find_tool(firewall.RESTORE[version]):
            _collect(errors, _gc_family, version, network, valid_ids)
    if firewall.find_tool(firewall.NFT):
        _collect(errors, _gc_nft, network, valid)
    return [f"ipMasq GC: {e.msg}" for e in errors]


def _gc_family(version: int, network: str, valid_ids: set[str]) -> None:
    table = ipt.parse_save(firewall.save_nat(version))
    stale = ipt.stale_chains(table, network, valid_ids)
    if stale and (failure := firewall.restore_nat(version, ipt.render_restore(ipt.plan_remove_found(table, stale)))):
        raise failure


def _gc_nft(network: str, valid: set[tuple[str, str]]) -> None:
    handles = nft.stale_handles(_nft_rules(), network, valid)
    if handles:
        firewall.nft_apply(nft.render_delete(handles))
