"""The iptables form of ipMasq as data: the reference's rules, read back and planned as restore scripts.

Pure: nothing here runs a program. A rule is kept as the tokens `iptables-save` prints for
it, so rules we plan compare equal to rules read back, whoever made them. The reference
bridge makes, in table nat and per container address (AppendUnique, so never twice):

    -A CNI-<hash> -d <subnet> -m comment --comment "name: ... id: ..." -j ACCEPT
    -A CNI-<hash> ! -d 224.0.0.0/4 -m comment --comment ... -j MASQUERADE      (ff00::/8 for v6)
    -A POSTROUTING -s <address>/32 -m comment --comment ... -j CNI-<hash>      (/128 for v6)

Its tear-down also deletes the older `-s <subnet>` form of the jump.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from cni_rkt.net.masquerade_names import chain_name

POSTROUTING = "POSTROUTING"
MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}
_COMMENT_PATTERN = re.compile(r'^name: "((?:[^"\\]|\\.)*)" id: "((?:[^"\\]|\\.)*)"$')


@dataclass(frozen=True, slots=True)
class Rule:
    chain: str
    spec: tuple[str, ...]  # the tokens after "-A <chain>", as iptables-save prints them

    @property
    def target(self) -> str:
        return _value_after(self.spec, "-j")

    @property
    def comment(self) -> str:
        return _value_after(self.spec, "--comment")


@dataclass(slots=True)
class NatTable:
    """What `iptables-save -t nat` shows: the chains and the rules in order."""

    chains: set[str] = field(default_factory=set)
    rules: list[Rule] = field(default_factory=list)


def _value_after(tokens: tuple[str, ...], flag: str) -> str:
    for i, token in enumerate(tokens[:-1]):
        if token == flag:
            return tokens[i + 1]
    return ""


def _commented(comment: str, *match: str, target: str) -> tuple[str, ...]:
    return (*match, "-m", "comment", "--comment", comment, "-j", target)


def desired_rules(
    interfaces: Iterable[ipaddress.IPv4Interface | ipaddress.IPv6Interface], chain: str, comment: str
) -> list[Rule]:
    """The reference's rules for these addresses (one family), in its order, without repeats."""
    rules: list[Rule] = []
    for interface in interfaces:
        host = f"{interface.ip}/{interface.max_prefixlen}"
        for rule in (
            Rule(chain, _commented(comment, "-d", str(interface.network), target="ACCEPT")),
            Rule(chain, _commented(comment, "!", "-d", MULTICAST[interface.version], target="MASQUERADE")),
            Rule(POSTROUTING, _commented(comment, "-s", host, target=chain)),
        ):
            if rule not in rules:
                rules.append(rule)
    return rules


def parse_save(text: str, naming: str = "") -> NatTable:
    """The chains and rules of the nat table in `iptables-save -t nat` output; with `naming`,
    only the rules that name that chain (its own and the jumps to it): a host's table has
    a chain and a jump per pod, and splitting every rule's line costs more than the save."""
    table = NatTable()
    in_nat = False
    for line in text.splitlines():
        if line.startswith("*"):
            in_nat = line == "*nat"
        elif not in_nat:
            continue
        elif line.startswith(":"):
            table.chains.add(line[1:].split()[0])
        elif line.startswith("-A ") and naming in line:
            tokens = shlex.split(line)
            table.rules.append(Rule(tokens[1], tuple(tokens[2:])))
    return table


def parse_comment(comment: str) -> tuple[str, str] | None:
    """(network, container id) from a reference comment, or None for anyone else's."""
    match = _COMMENT_PATTERN.match(comment)
    if not match:
        return None
    unescape = lambda s: re.sub(r"\\(.)", r"\1", s)  # noqa: E731 - the inverse of go_quote
    return unescape(match.group(1)), unescape(match.group(2))


def _quote(token: str) -> str:
    if token and not re.search(r'[\s"\\\']', token):
        return token
    return '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rule_line(verb: str, rule: Rule) -> str:
    return " ".join((verb, rule.chain, *(_quote(t) for t in rule.spec)))


def render_restore(lines: list[str]) -> str:
    """A nat-table script for `iptables-restore --noflush`: all of it applies, or none."""
    return "\n".join(("*nat", *lines, "COMMIT", ""))


def plan_create(chain: str, rules: list[Rule]) -> list[str]:
    """The first ADD of an attachment. `-N` fails (and with it the whole script) if the
    chain exists; without the chain no jump to it can exist, so nothing is duplicated."""
    return [f"-N {chain}", *(_rule_line("-A", r) for r in rules)]


def plan_append_missing(table: NatTable, chain: str, rules: list[Rule]) -> list[str]:
    """A retried ADD: append only what is missing, as the reference's AppendUnique does."""
    lines = [] if chain in table.chains else [f"-N {chain}"]
    return lines + [_rule_line("-A", r) for r in rules if r not in table.rules]


def plan_remove_known(chain: str, jumps: list[Rule]) -> list[str]:
    """Tear-down when the attachment looks as ADD left it; fails as a whole otherwise."""
    return [*(_rule_line("-D", j) for j in jumps), f"-F {chain}", f"-X {chain}"]


def plan_remove_found(table: NatTable, chains: set[str]) -> list[str]:
    """Tear-down from what is there: every rule jumping to these chains, then the chains."""
    lines = [_rule_line("-D", r) for r in table.rules if r.target in chains and r.chain not in chains]
    for chain in sorted(chains & table.chains):
        lines += [f"-F {chain}", f"-X {chain}"]
    return lines


def plan_remove_attachment(table: NatTable, chain: str, sources: set[str]) -> list[str]:
    """Tear-down from what is there, of the attachment whose jumps come from `sources` (its
    addresses, and its subnets: the older jump's source). A jump from another source is
    another interface of the same container on this network, which shares the chain (the
    iptables form ignores ifname): then only our jumps go, and the chain stays for it."""
    jumps = [r for r in table.rules if r.target == chain and r.chain != chain]
    if all(_value_after(j.spec, "-s") in sources for j in jumps):
        return plan_remove_found(table, {chain})
    return [_rule_line("-D", j) for j in jumps if _value_after(j.spec, "-s") in sources]


def jump_sources(interfaces: Iterable[ipaddress.IPv4Interface | ipaddress.IPv6Interface]) -> set[str]:
    """The sources, as iptables-save prints them, of the jumps ADD made (and made before
    the reference moved from the subnet to the address) for these addresses."""
    return {f"{i.ip}/{i.max_prefixlen}" for i in interfaces} | {str(i.network) for i in interfaces}


def missing_rules(table: NatTable, chain: str, rules: list[Rule]) -> list[str]:
    """What CHECK reports: the chain or rules that ADD made and that are gone."""
    problems = [] if chain in table.chains else [f"chain {chain} is missing from table nat"]
    return problems + [f"missing rule in table nat: {_rule_line('-A', r)}" for r in rules if r not in table.rules]


def stale_chains(table: NatTable, network: str, valid_ids: set[str]) -> set[str]:
    """Chains of this network whose container is not among `valid_ids`, found by rule comments."""
    stale = set()
    for rule in table.rules:
        owner = parse_comment(rule.comment)
        if owner and owner[0] == network and owner[1] not in valid_ids:
            chain = chain_name(network, owner[1])
            if chain in table.chains:
                stale.add(chain)
    return stale
