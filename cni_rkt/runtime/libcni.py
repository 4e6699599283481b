"""The runtime side of the CNI protocol, as libcni (and rkt) drive a network's plugins.

    add:    plugins in order; each gets the previous one's result as prevResult; the last
            result is cached and returned (libcni AddNetworkList)
    check:  (0.4.0+) plugins in order with the cached result as prevResult
    delete: plugins in reverse with the cached result as prevResult (0.4.0+; one that cannot be
            read is dropped, as libcni does); cache removed
    gc:     (libcni GCNetworkList) DEL of every cached attachment not in the valid set, then,
            at 1.1.0+, GC to every plugin with `cni.dev/valid-attachments`
    status: (1.1.0+) STATUS to every plugin, stopping at the first error

Every plugin config gets the list's `name` and `cniVersion` and, for the capabilities it
declares, `runtimeConfig`; it is re-encoded with sorted keys as Go's encoder writes a map.
In rkt mode the one plugin gets the file's bytes unchanged plus CNI_VERSION=0.1.0, no
prevResult, and DEL uses the config recorded at ADD (rkt keeps a copy for its DEL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.protocol import spec
from cni_rkt.protocol.delegate import call_plugin
from cni_rkt.protocol.invocation import check_container_id, check_ifname
from cni_rkt.runtime import cache, load_json_object
from cni_rkt.runtime.cache import Attachment
from cni_rkt.runtime.netconf import NetworkList

RKT_CNI_VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class Runtime:
    """Where plugins and cached results live, and the environment the plugins inherit."""

    cni_path: tuple[str, ...]
    cache_dir: str
    environ: Mapping[str, str]
    rkt: bool = False


class PluginError(CNIError):
    """A plugin's own CNI error, with which plugin and verb it came from."""

    def __init__(self, error: CNIError, plugin_type: str, verb: str) -> None:
        super().__init__(error.code, error.msg, error.details)
        self.plugin_type = plugin_type
        self.verb = verb

    def describe(self) -> str:
        return f'plugin type="{self.plugin_type}" failed ({self.verb.lower()}): {CNIError.__str__(self)}'


# --- pure parts ---------------------------------------------------------------------------


def version_of(net: NetworkList) -> tuple[int, int, int]:
    try:
        return spec.version_tuple(net.cni_version or spec.IMPLICIT_VERSION)
    except ValueError:
        raise CNIError(ErrorCode.INCOMPATIBLE_VERSION, f'invalid cniVersion "{net.cni_version}"') from None


def runtime_config(plugin: dict, capability_args: Mapping[str, object]) -> dict:
    """The capability args this plugin declares it wants (libcni injectRuntimeConfig)."""
    declared = plugin.get("capabilities")
    if not isinstance(declared, dict):
        return {}
    return {key: capability_args[key] for key, wanted in declared.items() if wanted is True and key in capability_args}


def render_config(config: dict) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def build_plugin_config(net: NetworkList, plugin: dict, prev_result: dict | None = None,
                        capability_args: Mapping[str, object] | None = None) -> bytes:
    config = dict(plugin)
    config["name"] = net.name
    config["cniVersion"] = net.cni_version
    if prev_result is not None:
        config["prevResult"] = prev_result
    injected = runtime_config(plugin, capability_args or {})
    if injected:
        config["runtimeConfig"] = injected
    return render_config(config)


def render_cni_args(pairs: Iterable[tuple[str, str]]) -> str:
    return ";".join(f"{key}={value}" for key, value in pairs)


def plugin_environment(rt: Runtime, command: str, attachment: Attachment | None) -> dict[str, str]:
    """The caller's environment plus every CNI_* variable (empty for GC and STATUS), as libcni."""
    env = dict(rt.environ)
    env.update(
        CNI_COMMAND=command,
        CNI_CONTAINERID=attachment.container_id if attachment else "",
        CNI_NETNS=attachment.netns if attachment else "",
        CNI_ARGS=render_cni_args(attachment.cni_args) if attachment else "",
        CNI_IFNAME=attachment.ifname if attachment else "",
        CNI_PATH=":".join(rt.cni_path),
    )
    if rt.rkt:
        env["CNI_VERSION"] = RKT_CNI_VERSION
    return env


def decode_result(stdout: bytes, config_version: str) -> dict:
    """A plugin's ADD output; a missing cniVersion is the config's (libcni fixupResultVersion)."""
    from cni_rkt.protocol.result import parse_result

    result = load_json_object(stdout, "the plugin's result")
    if not result.get("cniVersion"):
        result = {"cniVersion": config_version or spec.IMPLICIT_VERSION, **result}
    try:
        parse_result(result, config_version or spec.IMPLICIT_VERSION)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CNIError(ErrorCode.DECODING_FAILURE, f"failed to parse the plugin's result: {exc!r}") from exc
    return result


def convert_result(result: dict, version: str) -> dict:
    """A cached result in the list's version, so prevResult matches the config (libcni)."""
    from cni_rkt.protocol.result import parse_result, result_to_dict

    version = version or spec.IMPLICIT_VERSION
    if result.get("cniVersion") == version:
        return result
    try:
        return result_to_dict(parse_result(result, version), version)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CNIError(ErrorCode.DECODING_FAILURE, f"cached result cannot be read as {version}: {exc!r}") from exc


def check_attachment(net: NetworkList, attachment: Attachment) -> None:
    """libcni validates these before any exec; they also name the cache file."""
    check_container_id(attachment.container_id)
    check_ifname(attachment.ifname)
    if attachment.network != net.name:
        raise ValueError("attachment of another network")


# --- running plugins ----------------------------------------------------------------------


def _run(rt: Runtime, plugin_type: str, command: str, stdin: bytes, attachment: Attachment | None) -> bytes:
    try:
        return call_plugin(plugin_type, command, stdin, plugin_environment(rt, command, attachment), rt.cni_path)
    except CNIError as error:
        raise PluginError(error, plugin_type, command) from error


def add(net: NetworkList, attachment: Attachment, rt: Runtime) -> dict:
    check_attachment(net, attachment)
    if rt.rkt:
        result = decode_result(_run(rt, net.plugins[0]["type"], "ADD", net.raw, attachment), net.cni_version)
    else:
        result = None
        for plugin in net.plugins:
            stdin = build_plugin_config(net, plugin, result, attachment.capability_args)
            result = decode_result(_run(rt, plugin["type"], "ADD", stdin, attachment), net.cni_version)
    cache.write_entry(rt.cache_dir, attachment, net.raw if rt.rkt else net.list_bytes, result)
    return result


def _prev_result(net: NetworkList, attachment: Attachment, rt: Runtime) -> dict | None:
    result = cache.cached_result(rt.cache_dir, attachment)
    return convert_result(result, net.cni_version) if result is not None else None


def check(net: NetworkList, attachment: Attachment, rt: Runtime) -> None:
    check_attachment(net, attachment)
    if version_of(net) < (0, 4, 0):
        raise CNIError(
            ErrorCode.INCOMPATIBLE_VERSION,
            f'configuration version "{net.cni_version}" does not support the CHECK command',
        )
    if net.disable_check:
        return
    previous = _prev_result(net, attachment, rt)
    for plugin in net.plugins:
        _run(rt, plugin["type"], "CHECK", build_plugin_config(net, plugin, previous, attachment.capability_args),
             attachment)


def delete(net: NetworkList, attachment: Attachment, rt: Runtime) -> None:
    check_attachment(net, attachment)
    if rt.rkt:
        stdin = cache.cached_config(rt.cache_dir, attachment) or net.raw
        try:
            _run(rt, net.plugins[0]["type"], "DEL", stdin, attachment)
        finally:
            cache.remove_entry(rt.cache_dir, attachment)  # rkt drops its copy even when DEL fails
        return
    previous = _deletable_prev_result(net, attachment, rt) if version_of(net) >= (0, 4, 0) else None
    for plugin in reversed(net.plugins):
        _run(rt, plugin["type"], "DEL", build_plugin_config(net, plugin, previous, attachment.capability_args),
             attachment)
    cache.remove_entry(rt.cache_dir, attachment)


def _deletable_prev_result(net: NetworkList, attachment: Attachment, rt: Runtime) -> dict | None:
    """As libcni's DEL: a cached result it cannot read or convert is dropped, and DEL runs
    without prevResult rather than failing on every retry (a 0-byte file, cni#1066)."""
    try:
        return _prev_result(net, attachment, rt)
    except CNIError:
        cache.remove_entry(rt.cache_dir, attachment)
        return None


def gc(net: NetworkList, valid: Iterable[tuple[str, str]], rt: Runtime,
       cached: Iterable[Attachment] | None = None) -> None:
    """Every step runs; errors are collected and raised together at the end. `cached` is the
    network's cached attachments when the caller has read them to build `valid` (as `cni-rkt exec
    gc` does): a second reading could hold one cached meanwhile, which `valid` was made without."""
    if net.disable_gc:
        return
    valid = list(dict.fromkeys(valid))
    errors: list[CNIError] = []
    if cached is None:
        cached = cache.cached_attachments(rt.cache_dir, net.name)
    for attachment in cached:
        if (attachment.container_id, attachment.ifname) in valid:
            continue
        try:
            delete(net, attachment, rt)
        except CNIError as error:
            errors.append(error)
    if version_of(net) >= (1, 1, 0):
        listed = [{"containerID": cid, "ifname": ifname} for cid, ifname in valid]
        for plugin in net.plugins:
            config = dict(plugin, name=net.name, cniVersion=net.cni_version)
            config.update({key: listed for key in spec.VALID_ATTACHMENTS_KEYS})
            try:
                _run(rt, plugin["type"], "GC", render_config(config), None)
            except CNIError as error:
                errors.append(error)
    if errors:
        raise CNIError(errors[0].code, "; ".join(_describe(e) for e in errors))


def status(net: NetworkList, rt: Runtime) -> None:
    if version_of(net) < (1, 1, 0):
        return
    for plugin in net.plugins:
        _run(rt, plugin["type"], "STATUS", render_config(dict(plugin, name=net.name, cniVersion=net.cni_version)),
             None)


def _describe(error: CNIError) -> str:
    return error.describe() if isinstance(error, PluginError) else str(error)
