"""The CNI protocol's rules for a file on disk: kind, name, versions, reserved keys, type."""

from __future__ import annotations

import json

from cni_rkt.protocol.spec import NAME_PATTERN, version_tuple
from cni_rkt.protocol.spec import SUPPORTED_VERSIONS as SPEC_VERSIONS
from cni_rkt.validate.document import CONF_EXTENSIONS, LIST_EXTENSIONS, Document, pointer_join
from cni_rkt.validate.findings import Severity
from cni_rkt.validate.schemas import json_type as json_kind

RESERVED_KEYS = ("runtimeConfig", "args", "prevResult")
# Plugins that refuse older configuration versions (containernetworking/plugins v1.x).
MINIMUM_VERSION = {"bandwidth": "0.3.0", "firewall": "0.4.0", "vrf": "0.3.1"}


def effective_version(doc: Document) -> str:
    """What libcni assumes: a missing cniVersion means 0.1.0."""
    version = doc.cni_version()
    return version if version in SPEC_VERSIONS else "0.1.0"


def check_kind(doc: Document) -> bool:
    """Cross-check the content's kind with the extension; False when nothing more can be checked."""
    if not isinstance(doc.value, dict):
        doc.emit("CNI103", "", "a network configuration must be a JSON object, found "
                 f"{type(doc.value).__name__}")
        return False
    kind, ext = doc.kind, doc.extension
    if kind == "conflist" and ext in CONF_EXTENSIONS:
        doc.emit("CNI103", "/plugins", f"a configuration list (with \"plugins\") in a {ext} file: runtimes read "
                 f"{ext} as one plugin (libcni fails with \"error parsing configuration: missing 'type'\"); "
                 "rename it to .conflist", at_key=True)
    elif kind == "conf" and ext in LIST_EXTENSIONS:
        doc.emit("CNI103", "/type", "a single plugin configuration (with \"type\", no \"plugins\") in a "
                 ".conflist file: put it in a .conf file or wrap it in \"plugins\"", at_key=True)
    elif kind == "unknown":
        if ext in LIST_EXTENSIONS:
            doc.emit("CNI114", "", "the configuration list has no \"plugins\" key")
        else:
            doc.emit("CNI116", "", "missing \"type\": neither a plugin configuration (\"type\") nor a "
                     "configuration list (\"plugins\")")
        return False
    return True


def check_name(doc: Document) -> None:
    value = doc.value
    if "name" not in value:
        wording = "error parsing configuration list: no name" if doc.kind == "conflist" else "missing network name"
        doc.emit("CNI110", "", f"the network has no \"name\" (the runtime fails with: {wording})")
        return
    name = value["name"]
    if not isinstance(name, str):
        doc.emit("CNI106", "/name", f"\"name\" must be a string, found {json_kind(name)}")
    elif not NAME_PATTERN.match(name):
        doc.emit("CNI110", "/name", f"network name {name!r} has characters the runtime rejects "
                 "(\"invalid characters found in network name\"): it must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$")


def check_versions(doc: Document, *, rkt: bool = False) -> None:
    value = doc.value
    if "cniVersion" not in value:
        if doc.kind == "conflist":
            doc.emit("CNI111", "", "no \"cniVersion\": kubelet 1.16+ drops configuration lists without one "
                     "(libcni assumes 0.1.0, which has no lists); set it explicitly")
        elif not rkt:  # rkt passes CNI_VERSION=0.1.0 anyway, and its guide omits cniVersion
            doc.emit("CNI111", "", "no \"cniVersion\": libcni assumes 0.1.0 (no CHECK, no chaining); set it "
                     "explicitly", severity=Severity.INFO)
    elif isinstance(value["cniVersion"], str) and value["cniVersion"] not in SPEC_VERSIONS:
        doc.emit("CNI112", "/cniVersion", f"cniVersion {value['cniVersion']!r} is not a CNI spec version "
                 f"(known: {', '.join(SPEC_VERSIONS)})")
    versions = value.get("cniVersions")
    if isinstance(versions, list):
        for index, version in enumerate(versions):
            if isinstance(version, str) and version not in SPEC_VERSIONS:
                doc.emit("CNI112", f"/cniVersions/{index}", f"cniVersions entry {version!r} is not a CNI spec version")
    version = doc.cni_version()
    if doc.kind == "conflist" and version in SPEC_VERSIONS and version_tuple(version) < (0, 3, 0):
        doc.emit("CNI113", "/cniVersion", f"cniVersion {version} in a configuration list: lists and chaining "
                 f"exist only since spec 0.3.0; libcni still runs it, but each chained plugin gets a {version} "
                 "prevResult without interfaces (use 0.3.1 or later)")


LIST_FLAGS = ("disableCheck", "disableGC", "loadOnlyInlinedPlugins")


def check_list_flags(doc: Document) -> None:
    """libcni reads these as a bool or the strings true/false in any case; other strings fail the load."""
    for key in LIST_FLAGS:
        value = doc.value.get(key)
        if isinstance(value, str) and value.lower() not in ("true", "false"):
            doc.emit("CNI107", f"/{key}", f"{key} is {json.dumps(value)}, not true or false (libcni fails with: "
                     f"error parsing configuration list: invalid value {json.dumps(value)} for {key})")


def check_reserved_keys(doc: Document, pointer: str, obj: dict) -> None:
    for key in obj:
        if key in RESERVED_KEYS or key.startswith("cni.dev/"):
            doc.emit("CNI115", pointer_join(pointer, key), f"\"{key}\" is reserved for what the runtime passes at "
                     "run time; it should not be written in a file on disk", at_key=True)


def check_type(doc: Document, pointer: str, obj: dict, *, field: str = "type", what: str = "plugin") -> str | None:
    """The plugin's type if it is a usable string; reports a missing or path-like one."""
    if field not in obj:
        doc.emit("CNI116", pointer, f"missing \"type\": nothing tells which {what} to run")
        return None
    plugin_type = obj[field]
    if not isinstance(plugin_type, str):
        doc.emit("CNI106", pointer_join(pointer, field), f"\"{field}\" must be a string, found {json_kind(plugin_type)}")
        return None
    if "/" in plugin_type or "\\" in plugin_type:
        doc.emit("CNI116", pointer_join(pointer, field), f"\"{field}\" {plugin_type!r} contains a path separator "
                 "(libcni: invalid plugin name); name the executable and put it on the plugin path")
        return None
    if not plugin_type:
        doc.emit("CNI116", pointer_join(pointer, field), f"\"{field}\" is empty")
        return None
    return plugin_type


def check_version_floor(doc: Document, pointer: str, plugin_type: str) -> None:
    floor = MINIMUM_VERSION.get(plugin_type)
    version = effective_version(doc)
    if floor and version_tuple(version) < version_tuple(floor):
        doc.emit("CNI117", pointer_join(pointer, "type"), f"{plugin_type} supports cniVersion {floor} and later; "
                 f"this configuration is {version} (the plugin fails with: incompatible CNI versions)",
                 severity=Severity.ERROR)
