"""Optional checks against the node: plugin executables on --cni-path, flanneld's subnet.env."""

from __future__ import annotations

import ipaddress
import os

from cni_rkt.validate.document import Document, pointer_join
from cni_rkt.validate.findings import Finding, Severity
from cni_rkt.validate.rules import RULES

SUBNET_ENV_KEYS = (("FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK"), ("FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"),
                   ("FLANNEL_MTU",), ("FLANNEL_IPMASQ",))


def check_environment(docs: list[Document], cni_path: list[str] | None, subnet_env: str | None,
                      sources: dict[str, str]) -> list[Finding]:
    """Findings about the environment files themselves; document findings go onto the documents."""
    extra: list[Finding] = []
    if cni_path is not None:
        for doc in docs:
            check_executables(doc, [d for d in cni_path if d])
    if subnet_env:
        with open(subnet_env, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        sources[subnet_env] = text
        values, lines, problems = parse_subnet_env(subnet_env, text)
        extra.extend(problems)
        for doc in docs:
            for pointer, plugin in doc.plugins():
                if plugin.get("type") == "flannel":
                    check_flannel_against(doc, pointer, plugin, values, subnet_env)
    return extra


def required_executables(doc: Document) -> list[tuple[str, str]]:
    """(pointer, executable) for every plugin the runtime or a plugin will exec for this file."""
    needed = []
    for pointer, plugin in doc.plugins():
        plugin_type = plugin.get("type")
        if isinstance(plugin_type, str):
            needed.append((pointer_join(pointer, "type"), plugin_type))
        ipam = plugin.get("ipam")
        if isinstance(ipam, dict) and isinstance(ipam.get("type"), str):
            needed.append((pointer_join(pointer, "ipam", "type"), ipam["type"]))
        if plugin_type == "flannel":  # flannel execs its delegate, which gets host-local IPAM
            delegate = plugin.get("delegate") if isinstance(plugin.get("delegate"), dict) else {}
            delegate_type = delegate.get("type", "bridge")
            if isinstance(delegate_type, str):
                needed.append((pointer_join(pointer, "type"), delegate_type))
            needed.append((pointer_join(pointer, "type"), "host-local"))
    return needed


def check_executables(doc: Document, directories: list[str]) -> None:
    for pointer, name in required_executables(doc):
        if "/" in name or not name:
            continue  # CNI116 already says why
        if not any(os.access(os.path.join(d, name), os.X_OK) and os.path.isfile(os.path.join(d, name))
                   for d in directories):
            doc.emit("ENV500", pointer, f"no executable \"{name}\" in the plugin path {':'.join(directories)} "
                     f"(the runtime fails with: failed to find plugin \"{name}\" in path)")


def parse_subnet_env(path: str, text: str) -> tuple[dict[str, str], dict[str, int], list[Finding]]:
    values, lines, problems = {}, {}, []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
            lines[key.strip()] = number

    def problem(line: int, message: str, severity: Severity | None = None) -> None:
        problems.append(Finding(path, "", line, 1, severity or RULES["ENV501"].severity, "ENV501", message))

    for alternatives in SUBNET_ENV_KEYS:
        if not any(k in values for k in alternatives):
            problem(1, f"subnet.env is missing {' or '.join(alternatives)} (flannel fails with: "
                    f"{path} is missing {alternatives[0]})")
    for network_key, subnet_key in (("FLANNEL_NETWORK", "FLANNEL_SUBNET"),
                                    ("FLANNEL_IPV6_NETWORK", "FLANNEL_IPV6_SUBNET")):
        try:
            network = ipaddress.ip_network(values[network_key], strict=False)
            subnet = ipaddress.ip_interface(values[subnet_key]).network
        except (KeyError, ValueError):
            continue
        inside = subnet.version == network.version and subnet.subnet_of(network)
        if not inside:
            problem(lines[subnet_key], f"{subnet_key} {values[subnet_key]} is not inside {network_key} {network}")
    if "FLANNEL_MTU" in values and not values["FLANNEL_MTU"].isdigit():
        problem(lines["FLANNEL_MTU"], f"FLANNEL_MTU {values['FLANNEL_MTU']!r} is not a number")
    if not problems:  # the plugin's own reading is stricter (no trimming, Go's CIDRs): its verdict
        from cni_rkt.errors import CNIError
        from cni_rkt.flannel.subnet_env import parse_subnet_env as flannel_reads

        try:
            flannel_reads(text, path)
        except CNIError as error:
            named = [key for key in lines if key in error.msg]
            problem(lines[named[0]] if named else 1, f"flannel fails with: {error.msg}")
    return values, lines, problems


def check_flannel_against(doc: Document, pointer: str, plugin: dict, values: dict[str, str], path: str) -> None:
    delegate = plugin.get("delegate") if isinstance(plugin.get("delegate"), dict) else {}
    base = pointer_join(pointer, "delegate")
    mtu = delegate.get("mtu")
    flannel_mtu = values.get("FLANNEL_MTU", "")
    if isinstance(mtu, int) and flannel_mtu.isdigit() and mtu > int(flannel_mtu):
        doc.emit("ENV501", pointer_join(base, "mtu"), f"delegate mtu {mtu} is larger than FLANNEL_MTU "
                 f"{flannel_mtu} in {path}: packets over the overlay's MTU are dropped")
    if delegate.get("ipMasq") is True and values.get("FLANNEL_IPMASQ") == "true":
        doc.emit("ENV501", pointer_join(base, "ipMasq"), f"the delegate masquerades and so does flanneld "
                 f"(FLANNEL_IPMASQ=true in {path}): traffic is masqueraded twice", at_key=True,
                 severity=Severity.WARNING)
