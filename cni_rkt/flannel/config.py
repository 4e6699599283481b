"""The flannel plugin's own net.d object -> FlannelConfig.

    {"name": "rkt.kubernetes.io", "type": "flannel", "delegate": {"isDefaultGateway": true}}

Keys and defaults are the reference's: `subnetFile` (/run/flannel/subnet.env), `dataDir`
(/var/lib/cni/flannel), `delegate` (the delegate's extra keys), `ipam` (the base of the
delegate's ipam), `runtimeConfig` (passed to the delegate). Only types are checked here;
what `delegate` may hold is checked when the delegate config is built, so that DEL still
works from the saved copy after `delegate` was edited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cni_rkt.errors import invalid_config
from cni_rkt.flannel.subnet_env import DEFAULT_SUBNET_FILE
from cni_rkt.protocol.invocation import NETCONF_SCHEMA, config_version
from cni_rkt.protocol.json_keys import respell_keys
from cni_rkt.protocol.json_values import expect, expect_path

DEFAULT_DATA_DIR = "/var/lib/cni/flannel"
# Its keys, for respell_keys: the reference's decoder matches them ignoring case. `ipam`,
# `delegate` and `runtimeConfig` are Go maps there ({} here): the keys they hold stay as
# written (a "Type" in ipam is not its type), and a repeated one is decoded into the same map.
CONFIG_SCHEMA = {
    **NETCONF_SCHEMA, "subnetFile": None, "dataDir": None, "ipam": {}, "delegate": {}, "runtimeConfig": {},
}


@dataclass(frozen=True, slots=True)
class FlannelConfig:
    name: str
    cni_version: str  # as written; "" when the file has none (rkt's files often do not)
    subnet_file: str = DEFAULT_SUBNET_FILE
    data_dir: str = DEFAULT_DATA_DIR
    delegate: dict = field(default_factory=dict)
    ipam: dict | None = None
    runtime_config: dict | None = None


def _path(config: dict, key: str, default: str) -> str:
    """A file name; `default` when absent or null. "" is kept here and refused by the verbs
    that use the file (require_path): DEL must still succeed, as the reference's does."""
    value = config.get(key)
    return default if value is None else expect_path(value, key)


def require_path(value: str, key: str) -> str:
    """`value` for a verb that opens it. "" is refused: the reference would open ""
    (subnetFile) or write its saved configs into its working directory (dataDir)."""
    if not value:
        raise invalid_config(f"{key} must not be empty", key)
    return value


def _object(config: dict, key: str) -> dict | None:
    value = config.get(key)
    return None if value is None else expect(value, dict, key)


def _written_version(config: dict) -> str:
    """The version to copy into the delegate: cniVersion, else the one picked from cniVersions."""
    if config.get("cniVersion") or config.get("cniVersions"):
        return config_version(config)
    return ""  # none written: the delegate gets none either, as in the reference


def load_flannel_config(config: dict) -> FlannelConfig:
    config = respell_keys(config, CONFIG_SCHEMA)
    return FlannelConfig(
        name=config["name"],
        cni_version=_written_version(config),
        subnet_file=_path(config, "subnetFile", DEFAULT_SUBNET_FILE),
        data_dir=_path(config, "dataDir", DEFAULT_DATA_DIR),
        delegate=dict(_object(config, "delegate") or {}),
        ipam=_object(config, "ipam"),
        runtime_config=_object(config, "runtimeConfig"),
    )
