"""A conf dir -> the network a runtime would run, under libcni's or rkt's lookup rules.

The read order is validate's loader model (cni_rkt/validate/directory.py), so
`cni-rkt validate DIR` and `cni-rkt exec` read the same files in the same order:
- libcni: sorted `*.conflist` first, then `*.conf`/`*.json`; the first file with the name
  wins; a file before it that libcni's loader refuses (bad JSON, no plugins, a plugin without
  type, ...) ends the lookup with an error; a single-plugin file is run as a one-plugin list.
- rkt: only `*.conf`, sorted; every file is parsed first (one broken file breaks every
  network); the first file with the name wins, else one of rkt's built-in networks
  (rkt_builtins.py); the plugin gets the file's bytes unchanged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from cni_rkt.errors import CNIError, ErrorCode, invalid_config
from cni_rkt.protocol import spec
from cni_rkt.runtime import load_json_object
from cni_rkt.runtime.rkt_builtins import BUILTIN_FILES, STAGE1_DIR

RUNTIMES = ("libcni", "rkt")


@dataclass(frozen=True, slots=True)
class NetworkList:
    """One network as the runtime runs it: a list of plugin configs sharing name and version."""

    name: str
    cni_version: str  # "" when the file names none (libcni injects it as found)
    plugins: tuple[dict, ...]
    path: str
    raw: bytes  # the file's bytes: rkt's stdin, and what rkt's cache records
    disable_check: bool = False
    disable_gc: bool = False

    @property
    def list_bytes(self) -> bytes:
        """What libcni caches as the config: a conflist's bytes, or a .conf wrapped as a list."""
        if self.path.endswith(".conflist"):
            return self.raw
        wrapped = {"cniVersion": self.cni_version, "name": self.name, "plugins": list(self.plugins)}
        return json.dumps(wrapped, sort_keys=True, separators=(",", ":")).encode()


def _flag(path: str, value: object, key: str) -> bool:
    """libcni reads disableCheck, disableGC and loadOnlyInlinedPlugins as a bool or the
    strings true/false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid_config(f"{path}: {key} must be true or false, got {json.dumps(value)}", key)


def _list_version(path: str, config: dict) -> str:
    """libcni's pick: the highest known of `cniVersions` and `cniVersion` together; a value
    that is not a version string is an error, never a silent 0.1.0."""
    version = _cni_version(path, config)
    if "cniVersions" not in config:
        return version
    versions = config["cniVersions"]
    if not isinstance(versions, list) or not all(isinstance(v, str) and _is_version(v) for v in versions):
        raise invalid_config(f"{path}: cniVersions must be a list of versions, got {json.dumps(versions)}",
                             "cniVersions")
    # libcni compares them as skel does ("1.0" is 1.0.0) and skips those newer than its own
    current = spec.compare_key(spec.CURRENT_VERSION)
    known = [v for v in [*versions, *([version] if version else [])] if spec.compare_key(v) <= current]
    return max(known, key=spec.compare_key) if known else version


def _cni_version(path: str, config: dict) -> str:
    version = config.get("cniVersion", "")
    if not isinstance(version, str):
        raise invalid_config(f"{path}: cniVersion must be a string, got {json.dumps(version)}", "cniVersion")
    return version


def _is_version(text: str) -> bool:
    try:
        spec.compare_key(text)
    except ValueError:
        return False
    return True


def parse_network_file(path: str, raw: bytes) -> dict:
    return load_json_object(raw, f"configuration {path}")


def network_list(path: str, raw: bytes, config: dict) -> NetworkList:
    """A conflist as is; a single-plugin config as a one-plugin list (libcni's ConfListFromConf)."""
    net = _loaded(path, raw, config)
    if not spec.NAME_PATTERN.match(net.name):
        raise invalid_config(f"{path}: invalid network name {json.dumps(net.name)}", "name")
    return net


def libcni_load_error(path: str, config: object) -> CNIError | None:
    """Why libcni's loader refuses this parsed file, which ends its lookup; None if it loads."""
    if not isinstance(config, dict):
        return invalid_config(f"{path}: the configuration is not a JSON object", "")
    try:
        _loaded(path, b"", config)
    except CNIError as error:
        return error
    return None


def _loaded(path: str, raw: bytes, config: dict) -> NetworkList:
    """The file as libcni's loader reads it, whatever its name; the errors that loader fails with
    (the name's pattern is checked only when the network runs)."""
    single = not path.endswith(".conflist")
    # A single config is decoded into a Go struct, where null is ""; a list's keys are checked
    # in a Go map, where a null name is no string.
    name = config.get("name")
    name = "" if name is None and single else name
    if not isinstance(name, str):
        raise invalid_config(f"{path}: invalid network name {json.dumps(name)}", "name")
    if single:
        # libcni wraps it as {name, cniVersion, plugins: [it]}: its cniVersions, disableCheck
        # and disableGC are no list keys there and do nothing (cri-o/ocicni#74)
        _check_types(path, [config])
        version = "" if config.get("cniVersion") is None else _cni_version(path, config)
        return NetworkList(name=name, cni_version=version, plugins=(config,), path=path, raw=raw)
    plugins = config.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise invalid_config(f"{path}: no plugins in list", "plugins")
    if not all(isinstance(p, dict) for p in plugins):
        raise invalid_config(f"{path}: every entry of plugins must be an object", "plugins")
    _check_types(path, plugins)
    _flag(path, config.get("loadOnlyInlinedPlugins", False), "loadOnlyInlinedPlugins")  # read, or refused
    return NetworkList(
        name=name,
        cni_version=_list_version(path, config),
        plugins=tuple(plugins),
        path=path,
        raw=raw,
        disable_check=_flag(path, config.get("disableCheck", False), "disableCheck"),
        disable_gc=_flag(path, config.get("disableGC", False), "disableGC"),
    )


def _check_types(path: str, plugins: list[dict]) -> None:
    for plugin in plugins:
        if not isinstance(plugin.get("type"), str) or not plugin["type"]:
            raise invalid_config(f"{path}: a plugin config has no type", "type")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise CNIError(ErrorCode.IO_FAILURE, f"error reading {path}: {exc.strerror}") from exc


def config_files(conf_dir: str, runtime: str) -> list[str]:
    """The files `runtime` reads from `conf_dir`, in its order; [] for a missing directory."""
    from cni_rkt.validate.directory import LOADERS
    from cni_rkt.validate.loader import list_directory

    try:
        names = list_directory(conf_dir)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CNIError(ErrorCode.IO_FAILURE, f"error reading {conf_dir}: {exc.strerror}") from exc
    return [os.path.join(conf_dir, n) for n in LOADERS[runtime].read_order(names)]


def load_network(conf_dir: str, name: str, runtime: str = "libcni") -> NetworkList:
    """The network called `name`, or a CNIError saying why it cannot be found."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}")
    files = config_files(conf_dir, runtime)
    if not files and runtime == "libcni":
        raise invalid_config(f"no net configurations found in {conf_dir}", "name")  # libcni's NoConfigsFoundError
    if runtime == "rkt":
        # rkt parses every .conf before it looks at names; its built-in networks come last,
        # so a file of the same name overrides them.
        parsed = [(p, raw, parse_network_file(p, raw)) for p, raw in ((p, _read(p)) for p in files)]
        parsed += [(os.path.join(STAGE1_DIR, f), raw, json.loads(raw)) for f, raw in BUILTIN_FILES.values()]
    else:
        parsed = _libcni_lookup(files, name)
    for path, raw, config in parsed:
        if config.get("name") == name:
            return network_list(path, raw, config)
    raise invalid_config(f'no net configuration with name "{name}" in {conf_dir}', "name")


def _libcni_lookup(files: list[str], name: str):
    """Files loaded one at a time; a file libcni cannot load ends the lookup, as in libcni."""
    for path in files:
        raw = _read(path)
        config = parse_network_file(path, raw)
        _loaded(path, raw, config)
        yield path, raw, config
        if config.get("name") == name:
            return
