"""`cni-rkt exec add|check|del|status|gc NETWORK [NETNS]`: run a configured network's plugins
against a netns as a runtime would (like cnitool). The protocol itself is cni_rkt/runtime/.

Exit status: EXIT_STATUS below (also shown by --help).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

from cni_rkt.cli.usage import UsageError, parse_valid

VERBS = ("add", "check", "del", "status", "gc")
NEEDS_NETNS = ("add", "check", "del")
RKT_VERBS = ("add", "del")  # rkt never sends CHECK, STATUS or GC
DEFAULT_CONF_DIR = "/etc/cni/net.d"
DEFAULT_CNI_PATH = "/opt/cni/bin"
DEFAULT_IFNAME = "eth0"
CONTAINER_ID_PREFIX = "cni-rkt-"


EXIT_STATUS = ("exit status: 0 done; 1 a plugin failed, or the network's lookup (its CNI error JSON on stdout, "
               "which plugin on stderr); 2 bad arguments")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cni_rkt.runtime.cache import DEFAULT_CACHE_DIR

    env = os.environ
    parser.add_argument("verb", choices=VERBS, help="the CNI verb to run")
    parser.add_argument("network", help="the network's name (its `name` key)")
    parser.add_argument("netns", nargs="?", default="",
                        help="netns path, e.g. /var/run/netns/pod1 (add, check and del; status and gc take none)")
    parser.add_argument("--conf-dir", default=env.get("NETCONFPATH") or DEFAULT_CONF_DIR,
                        help=f"where the network configs are (default: $NETCONFPATH or {DEFAULT_CONF_DIR})")
    parser.add_argument("--runtime", choices=("libcni", "rkt"), default="libcni",
                        help="lookup and exec rules: libcni (.conflist, then .conf/.json; name, cniVersion and "
                             "prevResult injected) or rkt (only .conf, the file's bytes as is, CNI_VERSION=0.1.0)")
    parser.add_argument("--cni-path", default=env.get("CNI_PATH") or DEFAULT_CNI_PATH,
                        help=f"plugin directories, colon-separated (default: $CNI_PATH or {DEFAULT_CNI_PATH})")
    parser.add_argument("--container-id", help=f"CNI_CONTAINERID (default: {CONTAINER_ID_PREFIX}<hash of NETNS>)")
    parser.add_argument("--ifname", default=env.get("CNI_IFNAME") or DEFAULT_IFNAME,
                        help=f"CNI_IFNAME (default: $CNI_IFNAME or {DEFAULT_IFNAME})")
    parser.add_argument("--args", default=env.get("CNI_ARGS", ""), help="CNI_ARGS, K=V;K=V (default: $CNI_ARGS)")
    parser.add_argument("--cap-args",  # None: not given, $CAP_ARGS applies (and rkt ignores it)
                        help="capability args as a JSON object, sent as runtimeConfig to the plugins that "
                             "declare them (default: $CAP_ARGS; libcni only)")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                        help=f"libcni's results cache (default: {DEFAULT_CACHE_DIR})")
    parser.add_argument("--valid", action="append", default=[], metavar="CID[:IFNAME]",
                        help="gc: an attachment still in use (repeatable); a CID alone keeps every cached "
                             "attachment of that container, and CID:--ifname")


def default_container_id(netns: str) -> str:
    """Like cnitool's: stable for a netns path, so DEL finds what ADD made."""
    return CONTAINER_ID_PREFIX + hashlib.sha512(netns.encode()).hexdigest()[:20]


def parse_args_pairs(raw: str) -> tuple[tuple[str, str], ...]:
    """CNI_ARGS as pairs; each item needs exactly one '=' between a key and a value (as cnitool reads it)."""
    pairs = []
    for item in raw.split(";") if raw else ():
        key, sep, value = item.partition("=")
        if not (sep and key and value) or "=" in value:
            raise UsageError(f"--args: invalid CNI_ARGS pair {item!r} (want KEY=VALUE)")
        pairs.append((key, value))
    return tuple(pairs)


def capability_args(args: argparse.Namespace) -> dict:
    """--cap-args, else $CAP_ARGS; a bad value is blamed on where it came from. rkt sends none,
    so with --runtime rkt neither is read (check_usage refuses --cap-args there)."""
    if args.runtime == "rkt":
        return {}
    if args.cap_args is not None:
        return parse_capability_args(args.cap_args, "--cap-args")
    return parse_capability_args(os.environ.get("CAP_ARGS", ""), "$CAP_ARGS")


def parse_capability_args(raw: str, source: str) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{source}: not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{source}: must be a JSON object, e.g. '{{\"portMappings\": [...]}}'")
    return value


def expand_valid(valid, cached, ifname: str) -> list[tuple[str, str]]:
    """A CID alone keeps every cached attachment of it, and CID:IFNAME (--ifname) besides: the
    plugins' GC is sent these pairs, so unlike `cni-rkt ipam reclaim --valid CID` it keeps only
    those of CID's attachments that the cache knows of."""
    whole = {cid for cid, item_ifname in valid if item_ifname is None}
    pairs = [(cid, item_ifname or ifname) for cid, item_ifname in valid]
    pairs += [(a.container_id, a.ifname) for a in cached if a.container_id in whole]
    return list(dict.fromkeys(pairs))


def check_usage(args: argparse.Namespace) -> None:
    if args.verb in NEEDS_NETNS and not args.netns:
        raise UsageError(f"{args.verb} needs NETNS, the path of the pod's network namespace")
    if args.verb not in NEEDS_NETNS and args.netns:
        # Ignoring it would be worst for gc: `gc NET CID` would release CID's attachment too.
        raise UsageError(f"{args.verb} takes no NETNS, got {args.netns!r} (gc keeps attachments given with --valid)")
    # An unset "$VAR" must not fall back to the default container id or reach a plugin unnamed.
    if args.container_id == "":
        raise UsageError("--container-id: an empty container id")
    if args.ifname == "":
        raise UsageError("--ifname: an empty interface name")
    if args.runtime == "rkt" and args.verb not in RKT_VERBS:
        raise UsageError(f"rkt never runs {args.verb.upper()}; use --runtime libcni")
    if args.valid and args.verb != "gc":
        raise UsageError("--valid is for gc only")
    if args.runtime == "rkt" and args.cap_args is not None:
        raise UsageError("--cap-args: rkt sends no runtimeConfig (the file's bytes as they are); use --runtime libcni")


def check_names(args: argparse.Namespace, valid: list[tuple[str, str | None]]) -> None:
    """Container ids and interface names libcni would refuse, refused as the flag's fault."""
    from cni_rkt.errors import CNIError
    from cni_rkt.protocol.invocation import check_container_id, check_ifname

    checks = [("--container-id", check_container_id, args.container_id), ("--ifname", check_ifname, args.ifname)]
    for container_id, ifname in valid:
        checks += [("--valid", check_container_id, container_id), ("--valid", check_ifname, ifname)]
    for flag, check, value in checks:
        if value is None:
            continue
        try:
            check(value)
        except CNIError as error:
            raise UsageError(f"{flag}: {error.msg}: {value!r}") from None


def execute(args: argparse.Namespace) -> int:
    try:
        check_usage(args)
        cni_args = parse_args_pairs(args.args)
        cap_args = capability_args(args)
        valid = parse_valid(args.valid)
        check_names(args, valid)
    except UsageError as exc:
        print(f"cni-rkt exec: {exc}", file=sys.stderr)
        return 2
    from cni_rkt.errors import CNIError

    try:
        result = run_verb(args, cni_args, cap_args, valid)
    except CNIError as error:
        return report_error(error)
    if result is not None:
        print(json.dumps(result, indent=4))
    return 0


def run_verb(args, cni_args, capability_args, valid) -> dict | None:
    from cni_rkt.runtime import libcni
    from cni_rkt.runtime.cache import Attachment, cached_attachments
    from cni_rkt.runtime.netconf import load_network

    net = load_network(args.conf_dir, args.network, args.runtime)
    rt = libcni.Runtime(
        cni_path=tuple(p for p in args.cni_path.split(":") if p),
        cache_dir=args.cache_dir,
        environ=dict(os.environ),
        rkt=args.runtime == "rkt",
    )
    if args.verb == "status":
        return libcni.status(net, rt)
    if args.verb == "gc":
        cached = cached_attachments(rt.cache_dir, net.name)  # read once: the attachments kept and those DELed
        return libcni.gc(net, expand_valid(valid, cached, args.ifname), rt, cached)
    netns = os.path.abspath(args.netns)
    attachment = Attachment(
        network=net.name,
        container_id=args.container_id or default_container_id(netns),
        ifname=args.ifname,
        netns=netns,
        cni_args=cni_args,
        capability_args=capability_args,
    )
    verb = {"add": libcni.add, "check": libcni.check, "del": libcni.delete}[args.verb]
    return verb(net, attachment, rt)


def report_error(error) -> int:
    """The plugin's CNI error as JSON on stdout (what a runtime reads), a readable line on stderr."""
    describe = getattr(error, "describe", None)
    print(f"cni-rkt exec: {describe() if describe else error}", file=sys.stderr)
    print(json.dumps(error.to_dict(), indent=4))
    return 1
