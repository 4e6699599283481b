"""Which worker a launcher may use: the switch, the socket path, the code stamp."""

import os

from cni_rkt.worker import identity


def test_worker_is_on_by_default_and_off_by_environment_or_flag_file(tmp_path, monkeypatch):
    monkeypatch.setattr(identity, "NO_WORKER_FLAG", str(tmp_path / "no-worker"))
    assert identity.worker_enabled({})
    assert not identity.worker_enabled({"CNI_RKT_WORKER": "0"})
    (tmp_path / "no-worker").touch()
    assert not identity.worker_enabled({})


def test_socket_dir_prefers_environment_then_launcher_then_default_for_root(monkeypatch):
    assert identity.socket_dir({"CNI_RKT_WORKER_SOCKET_DIR": "/a"}, "/b") == "/a"
    assert identity.socket_dir({}, "/b") == "/b"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert identity.socket_dir({}) == identity.DEFAULT_SOCKET_DIR
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert identity.socket_dir({}) is None  # /run/cni-rkt is root's


def test_socket_name_carries_version_and_installation():
    assert identity.socket_path("/run/cni-rkt", "0.1.0", "abc") == "/run/cni-rkt/worker-0.1.0-abc.sock"


def test_install_id_differs_per_interpreter_and_roots():
    one = identity.install_id("/venv/bin/python", ["/venv/lib/site-packages"])
    assert one == identity.install_id("/venv/bin/python", ["/venv/lib/site-packages"])
    assert one != identity.install_id("/other/bin/python", ["/venv/lib/site-packages"])
    assert one != identity.install_id("/venv/bin/python", ["/venv/lib/site-packages", "/src"])


def test_code_stamp_changes_when_a_module_changes_and_ignores_bytecode(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    module = package / "sub" / "mod.py"
    module.write_text("x = 1\n")
    before = identity.code_stamp(str(package), [str(tmp_path)])
    (package / "sub" / "__pycache__").mkdir()
    (package / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    os.utime(tmp_path, ns=(0, os.stat(tmp_path).st_mtime_ns))  # the root dir itself unchanged
    assert identity.code_stamp(str(package), [str(tmp_path)]) == before
    module.write_text("x = 22\n")
    assert identity.code_stamp(str(package), [str(tmp_path)]) != before


def test_idle_seconds_falls_back_to_the_default_for_nonsense():
    assert identity.idle_seconds({"CNI_RKT_WORKER_IDLE": "2.5"}) == 2.5
    assert identity.idle_seconds({"CNI_RKT_WORKER_IDLE": "soon"}) == identity.DEFAULT_IDLE_SECONDS
    assert identity.idle_seconds({"CNI_RKT_WORKER_IDLE": "-1"}) == identity.DEFAULT_IDLE_SECONDS
