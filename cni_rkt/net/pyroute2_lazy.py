"""Import pyroute2's netlink modules without running pyroute2's package __init__ first.

`import pyroute2.netlink.rtnl.ifinfmsg` executes `pyroute2/__init__.py` before anything
else, and that file imports the library's whole API (IPRoute, NDB, asyncio, wireless,
ethtool, ...): about 260 ms and 19 MiB here, for a plugin that needs three message classes.
The submodules do not depend on it. So `install()` registers the `pyroute2` package
unexecuted, and runs its __init__ only when an attribute of it is asked for
(`from pyroute2 import IPRoute` still works, just at full price, once).
"""

from __future__ import annotations

import importlib.util
import sys
import threading

PACKAGE = "pyroute2"


def install() -> None:
    """Idempotent; a no-op where pyroute2 is imported already (its full API is there)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:
        return  # let the first real import raise the usual ModuleNotFoundError
    package = importlib.util.module_from_spec(spec)  # __path__ and __spec__, nothing executed
    lock = threading.RLock()  # reentrant: __init__'s own look-ups come back here
    state = {"loaded": False, "loading": False}

    def attribute(name: str):
        # PEP 562: only reached for a name the package does not have (yet). A submodule
        # (`from pyroute2 import config`, as pyroute2's own modules say) is imported
        # alone; anything else is the library's API: run __init__, once (another thread
        # waits for it; a failed run is tried again by the next look-up).
        if importlib.util.find_spec(f"{PACKAGE}.{name}") is not None:
            return importlib.import_module(f"{PACKAGE}.{name}")
        with lock:
            if not state["loaded"] and not state["loading"]:
                state["loading"] = True
                try:
                    spec.loader.exec_module(package)
                    state["loaded"] = True
                finally:
                    state["loading"] = False
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

    package.__getattr__ = attribute
    sys.modules[PACKAGE] = package
