"""The protocol boundary: CNI_* environment and stdin bytes -> a frozen Invocation.

Checks run in the order of the reference's skel, so that the same bad input gets the
same error: the environment first (CNI_COMMAND, then the variables the verb needs),
then the JSON on stdin, then the network name, then the container id and interface
name, then the config's version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.protocol import spec
from cni_rkt.protocol.json_keys import object_from_pairs, respell_keys
from cni_rkt.protocol.result import DNS_SCHEMA

# Which variables each verb needs, in skel's order (skel is stricter than the spec about
# CNI_PATH; we keep its rule so runtimes see the same errors from either implementation).
_REQUIRED_ENV: dict[str, frozenset[str]] = {
    "CNI_COMMAND": frozenset(spec.VERBS) - {"VERSION"},
    "CNI_CONTAINERID": frozenset({"ADD", "CHECK", "DEL"}),
    "CNI_NETNS": frozenset({"ADD", "CHECK"}),
    "CNI_IFNAME": frozenset({"ADD", "CHECK", "DEL"}),
    "CNI_ARGS": frozenset(),
    "CNI_PATH": frozenset({"ADD", "CHECK", "DEL", "GC", "STATUS"}),
}

# Verbs refused when the config's version predates them.
_MIN_VERSION_FOR_VERB = {"CHECK": (0, 4, 0), "GC": (1, 1, 0), "STATUS": (1, 1, 0)}


@dataclass(frozen=True, slots=True)
class Invocation:
    """One exec of a plugin: what the runtime asked for, already checked."""

    command: str
    container_id: str
    netns: str
    ifname: str
    cni_args: str
    cni_path: tuple[str, ...]
    config: dict = field(hash=False)  # the parsed stdin object, its NetConf keys respelled (json_keys.py)
    stdin: bytes = b""  # the raw bytes, passed unchanged to delegates
    cni_version: str = spec.IMPLICIT_VERSION
    environ: Mapping[str, str] = field(default_factory=dict, hash=False)
    # The stdin object as decoded: keys as written, a repeated key's values all kept. A plugin
    # respells it in one pass with every key it reads, so repeats merge at every depth, as in Go.
    decoded: dict = field(default_factory=dict, hash=False)

    @property
    def network_name(self) -> str:
        return self.config["name"]


def read_command(environ: Mapping[str, str]) -> str:
    return environ.get("CNI_COMMAND", "")


def check_environment(environ: Mapping[str, str]) -> str:
    """Return the verb, or raise code 4 naming the missing variables."""
    command = read_command(environ)
    missing = [
        name
        for name, verbs in _REQUIRED_ENV.items()
        if not environ.get(name) and (name == "CNI_COMMAND" or command in verbs)
    ]
    if missing:
        raise CNIError(
            ErrorCode.INVALID_ENVIRONMENT, f"required env variables [{','.join(missing)}] missing"
        )
    return command


def _not_json(constant: str):
    """Python's decoder takes NaN and Infinity; JSON (and Go's decoder) does not."""
    raise ValueError(f"invalid value {constant}: not JSON")


# The keys every Go plugin decodes through libcni's NetConf, which Go matches ignoring case
# ("Name", "CNIVersion" and "IPAM": {"Type"} work there); each plugin respells its own keys.
NETCONF_SCHEMA = {
    "cniVersion": None,
    "name": None,
    "type": None,
    "capabilities": None,
    "ipam": {"type": None},
    "dns": DNS_SCHEMA,
    "prevResult": None,
    "cni.dev/valid-attachments": [dict.fromkeys(("containerID", "ifname"))],
}


def parse_config(stdin: bytes) -> dict:
    """Decode the network config, its NetConf keys spelled as the spec does, and check its name (codes 6 and 7)."""
    return netconf_of(decode_config(stdin))


_GO_JSON_KINDS = {list: "array", int: "number", float: "number", str: "string", bool: "bool"}


def decode_config(stdin: bytes) -> dict:
    """The network config as decoded (code 6 if it is not a JSON object)."""
    try:
        # UTF-8 only, as Go reads it: json.loads(bytes) would also take a BOM, UTF-16 or UTF-32
        config = json.loads(stdin.decode(), parse_constant=_not_json, object_pairs_hook=object_from_pairs)
    except RecursionError:  # nesting deeper than Python's stack; Go's decoder stops at 10,000
        raise CNIError(ErrorCode.DECODING_FAILURE, "error unmarshall network config: exceeded max depth") from None
    except (ValueError, UnicodeDecodeError) as exc:
        detail = "unexpected end of JSON input" if not stdin.strip() else str(exc)
        raise CNIError(ErrorCode.DECODING_FAILURE, f"error unmarshall network config: {detail}") from exc
    if config is None:  # Go decodes null into a struct as nothing at all
        return {}
    if not isinstance(config, dict):
        raise CNIError(
            ErrorCode.DECODING_FAILURE,
            f"error unmarshall network config: json: cannot unmarshal {_GO_JSON_KINDS[type(config)]} into "
            'Go value of type struct { Name string "json:\\"name\\"" }',  # skel's words, to the byte
        )
    return config


def netconf_of(decoded: dict) -> dict:
    """The config with its NetConf keys respelled, its name checked (codes 6 and 7)."""
    config = respell_keys(decoded, NETCONF_SCHEMA)
    name = config.get("name")
    if name in (None, ""):
        raise CNIError(ErrorCode.INVALID_NETWORK_CONFIG, "missing network name")
    if not isinstance(name, str):  # Go's decoder refuses it before any name rule
        raise CNIError(
            ErrorCode.DECODING_FAILURE, f"error unmarshall network config: name must be a string, got {json.dumps(name)}"
        )
    if not spec.NAME_PATTERN.match(name):
        raise CNIError(ErrorCode.INVALID_NETWORK_CONFIG, "invalid characters found in network name", str(name))
    return config


def check_container_id(container_id: str) -> None:
    """The one check of a container id (it ends up in host-local's files, so it must not forge a line).

    parse_invocation never gets here with an empty id: like skel, check_environment reports it
    as a missing variable (code 4). libcni calls this directly and gets Go's code 3.
    """
    if not container_id:
        raise CNIError(ErrorCode.UNKNOWN_CONTAINER, "missing containerID")
    if not spec.NAME_PATTERN.match(container_id):
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT, "invalid characters in containerID", container_id)


def check_ifname(ifname: str) -> None:
    if not ifname:
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT, "interface name is empty")
    try:
        size = spec.ifname_size(ifname)
    except UnicodeEncodeError:  # bytes of the environment that are not UTF-8 (netlink takes text)
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT, "interface name is not valid UTF-8", ascii(ifname)) from None
    if size > spec.MAX_IFNAME_LENGTH:
        raise CNIError(
            ErrorCode.INVALID_ENVIRONMENT,
            "interface name is too long",
            f"interface name should be less than {spec.MAX_IFNAME_LENGTH + 1} characters",
        )
    if ifname in (".", ".."):
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT, "interface name is . or ..")
    if any(c in "/:" or spec.go_is_space(c) for c in ifname):
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT, "interface name contains / or : or whitespace characters")


def config_version(config: dict) -> str:
    """The version the runtime asked for: cniVersion, else the highest of cniVersions, else 0.1.0."""
    version = config.get("cniVersion")
    if version in (None, ""):
        versions = config.get("cniVersions")
        if isinstance(versions, list) and versions:
            return spec.highest_supported([v for v in versions if isinstance(v, str)]) or str(versions[0])
        return spec.IMPLICIT_VERSION
    if not isinstance(version, str):
        raise CNIError(ErrorCode.DECODING_FAILURE, f"cniVersion must be a string, got {json.dumps(version)}")
    return version


def check_version(command: str, version: str) -> None:
    minimum = _MIN_VERSION_FOR_VERB.get(command)
    if minimum:
        _check_version_allows(command, version, minimum)
    if version not in spec.SUPPORTED_VERSIONS:
        supported = " ".join(f'"{v}"' for v in spec.SUPPORTED_VERSIONS)
        raise CNIError(
            ErrorCode.INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            f'config is "{version}", plugin supports [{supported}]',
        )


def _check_version_allows(command: str, version: str, minimum: tuple[int, int, int]) -> None:
    """skel compares the version of a CHECK, GC or STATUS before it looks it up in the list."""
    try:
        key = spec.compare_key(version)
    except ValueError as exc:
        raise CNIError(ErrorCode.DECODING_FAILURE, str(exc)) from None
    if key < minimum:
        raise CNIError(ErrorCode.INCOMPATIBLE_VERSION, f"config version does not allow {command}")
    if key > spec.version_tuple(spec.CURRENT_VERSION):
        raise CNIError(ErrorCode.INCOMPATIBLE_VERSION, f"plugin version does not allow {command}")


def parse_invocation(environ: Mapping[str, str], stdin: bytes) -> Invocation:
    """Everything a verb needs, or the CNIError the reference would give for this input."""
    command = check_environment(environ)
    if command not in spec.VERBS:
        # skel validates stdin before it rejects the verb; the verb is the clearer error.
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT, f"unknown CNI_COMMAND: {command}")
    decoded = decode_config(stdin)
    config = netconf_of(decoded)
    container_id = environ.get("CNI_CONTAINERID", "")
    ifname = environ.get("CNI_IFNAME", "")
    if command in ("ADD", "CHECK", "DEL"):
        check_container_id(container_id)
        check_ifname(ifname)
    version = config_version(config)
    check_version(command, version)
    path = tuple(p for p in environ.get("CNI_PATH", "").split(":") if p)
    return Invocation(
        command=command,
        container_id=container_id,
        netns=environ.get("CNI_NETNS", ""),
        ifname=ifname,
        cni_args=environ.get("CNI_ARGS", ""),
        cni_path=path,
        config=config,
        stdin=stdin,
        cni_version=version,
        environ=dict(environ),
        decoded=decoded,
    )
