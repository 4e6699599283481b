"""Get the worker and each spare child ready before a request arrives, without side effects.

`preload` imports every module a plugin may need (the plugins import some lazily, on
their first ipMasq or CHECK). `rehearse` then walks the paths every request takes:
netlink look-ups on loopback (read-only, in the worker's own namespace), a config parsed
into an Invocation, a result rendered. Run once in the worker, it settles first-use work
(lazy imports, caches) for all children. In a spare child, `own_memory` then copies the
worker's pages into the child while it waits, so the request takes no copy-on-write faults.
Both cost CPU, so a spare does them only when it is forked while no child is busy
(server.py): under load, that CPU is better left to the requests.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil
import sys

# Packages whose modules a plugin may import; cli and validate are not for plugins.
PLUGIN_PACKAGES = ("cni_rkt.protocol", "cni_rkt.ipam", "cni_rkt.net", "cni_rkt.plugins")
THIRD_PARTY = ("json", "subprocess", "sqlite3", "ctypes")  # pyroute2: through cni_rkt.net

LOOPBACK_INDEX = 1
_SAMPLE_ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "warm-up", "CNI_NETNS": "/proc/self/ns/net",
               "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent"}
_SAMPLE_CONFIG = (b'{"cniVersion":"1.0.0","name":"warm-up","type":"bridge","bridge":"cni0","isGateway":true,'
                  b'"ipam":{"type":"host-local","subnet":"10.22.0.0/16","routes":[{"dst":"0.0.0.0/0"}]}}')
_SAMPLE_RESULT = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "mac": "0a:58:0a:16:00:02", "sandbox": "/x"}],
                  "ips": [{"address": "10.22.0.2/16", "gateway": "10.22.0.1", "interface": 0}],
                  "routes": [{"dst": "0.0.0.0/0"}], "dns": {}}


def preload() -> None:
    """Import what plugins use. A module that fails to import is skipped, not fatal: a request
    that needs it then fails exactly as it would in-process, and the worker still serves the
    rest (a worker dying at start would cost every exec a new one)."""
    for name in THIRD_PARTY:
        _try_import(name)
    for package_name in PLUGIN_PACKAGES:
        package = _try_import(package_name)
        for module in pkgutil.iter_modules(getattr(package, "__path__", []), package_name + "."):
            _try_import(module.name)


def _try_import(name: str):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - see preload
        sys.stderr.write(f"cni-rkt worker: cannot preload {name}: {exc!r}\n")
        return None


def rehearse() -> None:
    """Best effort: a warm-up that fails only leaves the next request a little slower."""
    try:
        from cni_rkt.net.rtnl import RouteSocket

        from cni_rkt.protocol.invocation import parse_invocation
        from cni_rkt.protocol.result import parse_result, render_result

        # Loopback only: the cost must not grow with the pods on the node (every spare
        # child rehearses); a kernel-filtered dump of its (no) ports warms the dump path.
        with RouteSocket() as ipr:
            ipr.get_link(index=LOOPBACK_INDEX)
            ipr.dump_addresses(LOOPBACK_INDEX)
            ipr.dump_links(master=LOOPBACK_INDEX)
        parse_invocation(_SAMPLE_ENV, _SAMPLE_CONFIG)
        render_result(parse_result(_SAMPLE_RESULT, "1.0.0"), "0.2.0")
    except Exception as exc:  # noqa: BLE001 - warming up must never cost a request
        sys.stderr.write(f"cni-rkt worker: warm-up failed: {exc!r}\n")


MADV_POPULATE_WRITE = 23  # Linux 5.14+


def own_memory() -> int:
    """Copy the worker's memory into this spare child now, while it waits; return the bytes.

    A forked child shares the worker's pages until it writes to them, and Python writes
    to nearly every object it touches (reference counts). Measured on the project's
    machine, a bridge ADD in a fresh child took ~700 copy-on-write faults, 2-3x its time
    in a warm process. MADV_POPULATE_WRITE makes every private writable mapping this
    process's own in one call per mapping (about 8 ms for 12 MiB, off the request's
    path). Best effort: an older kernel refuses, and the request pays as before.
    """
    import ctypes

    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    owned = 0
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, permissions = line.split(maxsplit=2)[:2]
            if permissions.startswith("rw") and permissions.endswith("p"):
                start, end = (int(bound, 16) for bound in span.split("-"))
                if madvise(start, end - start, MADV_POPULATE_WRITE) == 0:
                    owned += end - start
    return owned


def freeze() -> None:
    gc.collect()
    gc.freeze()  # forked children then leave the imported objects' pages shared
