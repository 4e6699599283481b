"""Which worker a launcher may use: the switch, the socket path, the code stamp."""

import subprocess
import sys

from cni_rkt.launcher import import_roots
from cni_rkt.worker import identity

ROOTS = import_roots()


def test_worker_is_on_by_default_and_off_by_environment_or_flag_file(tmp_path, monkeypatch):
    monkeypatch.setattr(identity, "NO_WORKER_FLAG", str(tmp_path / "no-worker"))
    assert identity.worker_enabled({})
    assert not identity.worker_enabled({"CNI_RKT_WORKER": "0"})
    (tmp_path / "no-worker").touch()
    assert not identity.worker_enabled({})


def test_socket_dir_prefers_environment_then_launcher_then_default_for_root(monkeypatch):
    assert identity.socket_dir({"CNI_RKT_WORKER_SOCKET_DIR": "/a"}, "/b") == "/a"
    assert identity.socket_dir({}, "/b") == "/b"
    monkeypatch.setattr(identity.posix, "geteuid", lambda: 0)
    assert identity.socket_dir({}) == identity.DEFAULT_SOCKET_DIR
    monkeypatch.setattr(identity.posix, "geteuid", lambda: 1000)
    assert identity.socket_dir({}) is None  # /run/cni-rkt is root's


def test_socket_name_carries_version_and_installation():
    assert identity.socket_path("/run/cni-rkt", "0.1.0", "abc") == "/run/cni-rkt/worker-0.1.0-abc.sock"
    assert identity.socket_path("/run/cni-rkt/", "0.1.0", "abc") == "/run/cni-rkt/worker-0.1.0-abc.sock"


def test_install_id_differs_per_interpreter_and_roots():
    one = identity.install_id("/venv/bin/python", ["/venv/lib/site-packages"])
    assert one == identity.install_id("/venv/bin/python", ["/venv/lib/site-packages"])
    assert one != identity.install_id("/other/bin/python", ["/venv/lib/site-packages"])
    assert one != identity.install_id("/venv/bin/python", ["/venv/lib/site-packages", "/src"])


def test_tree_id_names_the_directory_not_its_path(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "pkg")
    assert identity.tree_id(str(tmp_path / "link")) == identity.tree_id(str(tmp_path / "pkg"))
    assert identity.tree_id(str(tmp_path / "other")) != identity.tree_id(str(tmp_path / "pkg"))


def test_launcher_side_imports_no_os_module():
    """Each launcher exec pays for what identity and client import (os: about 2 ms)."""
    probe = "import sys; import cni_rkt.worker.client; print('os' in sys.modules, '__future__' in sys.modules)"
    done = subprocess.run([sys.executable, "-IS", "-c", f"import sys; sys.path[:0] = {ROOTS!r}; {probe}"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_idle_seconds_falls_back_to_the_default_for_nonsense():
    assert identity.idle_seconds({"CNI_RKT_WORKER_IDLE": "2.5"}) == 2.5
    assert identity.idle_seconds({"CNI_RKT_WORKER_IDLE": "soon"}) == identity.DEFAULT_IDLE_SECONDS
    assert identity.idle_seconds({"CNI_RKT_WORKER_IDLE": "-1"}) == identity.DEFAULT_IDLE_SECONDS
