"""pyroute2's message modules load without its package __init__, and its full API is still
there on first use. Each case runs in a fresh interpreter: sys.modules is the point."""

import os
import subprocess
import sys

from cni_rkt.net import pyroute2_lazy

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def fresh(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_netlink_layer_loads_without_pyroute2s_api():
    loaded = fresh("import sys, cni_rkt.net.rtnl, cni_rkt.plugins.bridge\n"
                   "print(sorted(m for m in ('asyncio', 'pyroute2.iproute', 'pyroute2.ndb') if m in sys.modules))")
    assert loaded == "[]"


def test_the_full_api_is_still_one_import_away():
    assert fresh("import cni_rkt.net.rtnl\nfrom pyroute2 import IPRoute\nimport pyroute2\n"
                 "print(IPRoute.__name__, pyroute2.IPRoute is IPRoute)") == "IPRoute True"


def test_a_pyroute2_imported_before_is_left_as_it_is():
    assert fresh("import pyroute2, cni_rkt.net.rtnl\nprint(hasattr(pyroute2, 'NDB'))") == "True"


def test_install_is_idempotent_and_a_missing_name_still_raises():
    pyroute2_lazy.install()
    pyroute2_lazy.install()
    assert fresh("import cni_rkt.net\ntry:\n    from pyroute2 import no_such_thing\n"
                 "except ImportError:\n    print('ImportError')") == "ImportError"


def test_threads_asking_for_the_full_api_at_once_all_get_it():
    code = ("import threading, cni_rkt.net\n"
            "got = []\n"
            "def ask():\n"
            "    from pyroute2 import IPRoute\n"
            "    got.append(IPRoute.__name__)\n"
            "threads = [threading.Thread(target=ask) for _ in range(4)]\n"
            "[t.start() for t in threads]\n"
            "[t.join() for t in threads]\n"
            "print(got)")
    assert fresh(code) == "['IPRoute', 'IPRoute', 'IPRoute', 'IPRoute']"
