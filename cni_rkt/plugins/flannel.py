"""The `flannel` meta plugin: turn flanneld's subnet.env into a bridge config and delegate.

    add:    config + subnet.env -> delegate config -> saved under dataDir -> delegate ADD
            (if the delegate fails: delegate DEL, forget the saved config, re-raise;
            an ADD repeated without DEL only puts the earlier saved config back)
    delete: saved config (+ runtimeConfig, prevResult) -> delegate DEL -> forget it
    check:  saved config + prevResult -> delegate CHECK
    status: subnet.env missing or unusable -> 50, else delegate STATUS
    gc:     delegate DEL for saved attachments that are no longer valid, then delegate GC

The delegate's result is returned as is; the runner prints it in the flannel config's
cniVersion (the version the delegate was given too, when the config names one).
"""

from __future__ import annotations

import copy
import json

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.flannel.config import FlannelConfig, load_flannel_config, require_path
from cni_rkt.flannel.delegate_config import build_delegate_config, render_delegate_config
from cni_rkt.flannel.saved_configs import SavedConfig, SavedConfigs
from cni_rkt.flannel.subnet_env import load_subnet_env
from cni_rkt.protocol import spec
from cni_rkt.protocol.attachments import valid_attachments
from cni_rkt.protocol.delegate import delegate_add, delegate_other, find_plugin
from cni_rkt.protocol.invocation import Invocation
from cni_rkt.protocol.result import Result, result_to_dict
from cni_rkt.protocol.runner import log
from cni_rkt.protocol.undo import UndoStack



def _current_delegate(conf: FlannelConfig) -> dict:
    return build_delegate_config(conf, load_subnet_env(require_path(conf.subnet_file, "subnetFile")))


def add(inv: Invocation) -> Result:
    conf = load_flannel_config(inv.decoded)
    delegate = _current_delegate(conf)
    data = render_delegate_config(delegate)
    plugin_type = delegate["type"]
    find_plugin(plugin_type, inv.cni_path)  # a missing delegate fails before anything is written
    store = SavedConfigs(require_path(conf.data_dir, "dataDir"))
    earlier = store.load(inv.container_id, inv.ifname)
    log(f"flannel: ADD through {plugin_type} with {data.decode()}")
    with UndoStack(log) as undo:
        saved = store.save(inv.container_id, inv.ifname, data)
        if earlier is None:
            # Pushed before the ADD: a failing delegate may have made part of the attachment.
            undo.push("delegate DEL and forget the saved config", lambda: _delete_saved(inv, store, saved, delegate))
        else:
            # ADD repeated without DEL: a failure must not tear down what the earlier ADD made.
            undo.push("put the earlier saved config back", lambda: store.put_back(earlier, saved))
        result = delegate_add(plugin_type, data, inv.environ, inv.cni_path, inv.cni_version)
        result_to_dict(result, inv.cni_version)  # a result rkt cannot read fails here, undone
        undo.commit()
    return result


def _parse_saved(saved: SavedConfig) -> dict | None:
    try:
        delegate = json.loads(saved.data)
    except (ValueError, UnicodeDecodeError):
        return None
    return delegate if isinstance(delegate, dict) and isinstance(delegate.get("type"), str) else None


def _saved_stdin(saved: SavedConfig, delegate: dict, inv: Invocation, command: str) -> bytes:
    """The saved bytes, with this call's runtimeConfig and prevResult when it has them."""
    extra: dict = {}
    if isinstance(inv.config.get("runtimeConfig"), dict):
        extra["runtimeConfig"] = inv.config["runtimeConfig"]
    # A prevResult is only meaningful to the delegate at the version it was printed in.
    same_version = (delegate.get("cniVersion") or spec.IMPLICIT_VERSION) == inv.cni_version
    if command in ("DEL", "CHECK") and inv.config.get("prevResult") and same_version:
        extra["prevResult"] = inv.config["prevResult"]
    if not extra:
        return saved.data
    return render_delegate_config({**copy.deepcopy(delegate), **extra})


def _delete_saved(inv: Invocation, store: SavedConfigs, saved: SavedConfig, delegate: dict, environ=None) -> None:
    """Delegate DEL with the saved config; forget it only once the DEL succeeded."""
    stdin = _saved_stdin(saved, delegate, inv, "DEL")
    delegate_other(delegate["type"], "DEL", stdin, environ or inv.environ, inv.cni_path)
    store.remove(saved)


def delete(inv: Invocation) -> None:
    conf = load_flannel_config(inv.decoded)
    if not conf.data_dir:
        return  # nothing is saved under "": ADD refuses it
    store = SavedConfigs(conf.data_dir)
    saved = store.load(inv.container_id, inv.ifname)
    if saved is None:
        return  # never added, or already deleted
    delegate = _parse_saved(saved)
    if delegate is None:
        log(f"flannel: {saved.path} is not a delegate config; removing it without a delegate DEL")
        store.remove(saved)
        return
    _delete_saved(inv, store, saved, delegate)


def check(inv: Invocation) -> None:
    conf = load_flannel_config(inv.decoded)
    saved = SavedConfigs(require_path(conf.data_dir, "dataDir")).load(inv.container_id, inv.ifname)
    if saved is None:
        raise CNIError(
            ErrorCode.UNKNOWN_CONTAINER,
            f"flannel: no saved delegate config for container {inv.container_id} ({inv.ifname}) in {conf.data_dir}",
        )
    delegate = _parse_saved(saved)
    if delegate is None:
        raise CNIError(ErrorCode.DECODING_FAILURE, f"flannel: {saved.path} is not a delegate config")
    stdin = _saved_stdin(saved, delegate, inv, "CHECK")
    delegate_other(delegate["type"], "CHECK", stdin, inv.environ, inv.cni_path)


def status(inv: Invocation) -> None:
    conf = load_flannel_config(inv.decoded)
    require_path(conf.subnet_file, "subnetFile")  # a config error (7), not "cannot add pods" (50)
    try:
        delegate = _current_delegate(conf)
    except CNIError as error:
        raise CNIError(ErrorCode.NOT_AVAILABLE, f"flannel: cannot add pods: {error.msg}", error.details) from error
    stdin = render_delegate_config(delegate)
    delegate_other(delegate["type"], "STATUS", stdin, inv.environ, inv.cni_path)


def _stale(store: SavedConfigs, conf: FlannelConfig, valid: set[tuple[str, str]]):
    """This network's saved configs (with the parsed delegate) whose attachment is not valid."""
    valid_ids = {container_id for container_id, _ in valid}
    for saved in store.all():
        delegate = _parse_saved(saved)
        if delegate is None or delegate.get("name") != conf.name:
            continue
        if saved.ifname is None and saved.container_id not in valid_ids:
            yield saved, delegate
        elif saved.ifname is not None and (saved.container_id, saved.ifname) not in valid:
            yield saved, delegate


def gc(inv: Invocation) -> None:
    conf = load_flannel_config(inv.decoded)
    valid = valid_attachments(inv.config)
    store = SavedConfigs(require_path(conf.data_dir, "dataDir"))
    errors: list[CNIError] = []
    for saved, delegate in list(_stale(store, conf, valid)):
        if saved.ifname is None:
            continue  # the reference's file names no interface: left to the delegate's GC below
        environ = {**inv.environ, "CNI_CONTAINERID": saved.container_id, "CNI_IFNAME": saved.ifname, "CNI_NETNS": ""}
        try:
            _delete_saved(inv, store, saved, delegate, environ)
        except CNIError as error:
            errors.append(error)
    try:
        delegate = _current_delegate(conf)
        for key in spec.VALID_ATTACHMENTS_KEYS:
            if key in inv.config:
                delegate[key] = inv.config[key]
        stdin = render_delegate_config(delegate)
        delegate_other(delegate["type"], "GC", stdin, inv.environ, inv.cni_path)
        for saved, _ in list(_stale(store, conf, valid)):
            if saved.ifname is None and not store.has_own_files(saved.container_id):
                store.remove(saved)  # the reference's file: the delegate's GC released what it held
    except CNIError as error:
        errors.append(error)
    if errors:
        details = "; ".join(str(error) for error in errors)
        raise CNIError(errors[0].code, f"flannel: GC left {len(errors)} error(s)", details)
