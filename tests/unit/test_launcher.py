"""`cni-rkt install`: launchers a runtime can exec with its own minimal environment."""

import json
import os
import stat
import subprocess
import sys

import pytest

from cni_rkt import __version__
from cni_rkt.cli.main import main as cli_main
from cni_rkt.launcher import install_launchers, render_launcher
from cni_rkt.protocol.delegate import own_launcher_plugin


def test_install_writes_executable_launchers_with_absolute_interpreter(tmp_path, capsys):
    assert cli_main(["install", "--dir", str(tmp_path)]) == 0
    for plugin in ("bridge", "host-local", "flannel"):
        path = tmp_path / plugin
        assert os.access(path, os.X_OK)
        first = path.read_text().splitlines()[0]
        assert first == f"#!{sys.executable} -IS"
        assert own_launcher_plugin(str(path)) == f"{plugin} {__version__}"
    assert capsys.readouterr().out.split() == [str(tmp_path / p) for p in ("bridge", "host-local", "flannel")]


def test_install_says_which_other_plugins_it_replaced(tmp_path, capsys):
    """A plugin dir is often shared with the Go plugins: replacing one is reported, our own
    launchers (of any version) are replaced silently."""
    (tmp_path / "bridge").write_bytes(b"\x7fELF the Go bridge")
    cli_main(["install", "--dir", str(tmp_path), "--plugin", "host-local"])
    capsys.readouterr()
    assert cli_main(["install", "--dir", str(tmp_path), "--plugin", "bridge", "--plugin", "host-local"]) == 0
    err = capsys.readouterr().err
    assert f"replaced {tmp_path / 'bridge'}, which was not a cni-rkt launcher" in err
    assert "host-local" not in err
    assert own_launcher_plugin(str(tmp_path / "bridge")) == f"bridge {__version__}"


def test_launcher_answers_version_with_an_empty_environment(tmp_path):
    cli_main(["install", "--dir", str(tmp_path), "--plugin", "bridge"])
    proc = subprocess.run([str(tmp_path / "bridge")], env={"CNI_COMMAND": "VERSION"},
                          input=b'{"cniVersion":"1.0.0"}', capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "1.1.0" in json.loads(proc.stdout)["supportedVersions"]


def test_launcher_error_is_json_on_stdout(tmp_path):
    cli_main(["install", "--dir", str(tmp_path), "--plugin", "host-local"])
    # No worker: as root the launcher would start one in /run/cni-rkt (tests/unit/worker cover it).
    env = {"CNI_COMMAND": "ADD", "CNI_RKT_WORKER": "0"}
    proc = subprocess.run([str(tmp_path / "host-local")], env=env, input=b"",
                          capture_output=True, check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["code"] == 4


def test_relative_interpreter_is_refused():
    with pytest.raises(ValueError):
        render_launcher("bridge", "python3", [])


def test_install_into_unwritable_place_fails_cleanly(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli_main(["install", "--dir", str(blocker / "sub")]) == 1
    assert f"cni-rkt install: --dir {blocker / 'sub'}: cannot write the plugins there: " in capsys.readouterr().err
    assert cli_main(["install", "--dir", str(blocker)]) == 1
    assert f"cni-rkt install: --dir {blocker}: cannot write the plugins there: " in capsys.readouterr().err


@pytest.mark.parametrize("worker", ["0", "1"])
def test_launcher_with_stdin_closed_answers_code_5(tmp_path, worker):
    install_launchers(str(tmp_path), plugins=("host-local",), worker_socket_dir=str(tmp_path / "sock"))
    env = {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_PATH": str(tmp_path),
           "CNI_RKT_WORKER": worker}
    proc = subprocess.run([str(tmp_path / "host-local")], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          check=False, preexec_fn=lambda: os.close(0))
    assert proc.returncode == 1, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["code"] == 5 and reply["msg"].startswith("error reading from stdin")
    assert b"Traceback" not in proc.stderr


def test_install_refuses_an_interpreter_that_does_not_exist(tmp_path, capsys):
    assert cli_main(["install", "--dir", str(tmp_path / "bin"), "--python", "/nonexistent/python3"]) == 2
    assert "--python: interpreter /nonexistent/python3 is not an executable file" in capsys.readouterr().err
    assert not (tmp_path / "bin" / "bridge").exists()


def test_install_refuses_an_interpreter_without_cni_rkt(tmp_path, capsys):
    # -I: the system interpreter in isolated mode sees neither this checkout nor our venv
    wrapper = tmp_path / "bare-python"
    wrapper.write_text("#!/bin/sh\nexec /usr/bin/python3 -I \"$@\"\n")
    wrapper.chmod(0o755)
    assert cli_main(["install", "--dir", str(tmp_path / "bin"), "--python", str(wrapper)]) == 1
    assert f"--python: {wrapper} cannot import cni_rkt" in capsys.readouterr().err


def test_install_refuses_a_relative_interpreter_as_a_usage_error(tmp_path, capsys):
    assert cli_main(["install", "--dir", str(tmp_path / "bin"), "--python", "python3"]) == 2
    assert "--python: interpreter must be an absolute path, got 'python3'" in capsys.readouterr().err
    assert not (tmp_path / "bin").exists()


def test_launchers_are_0755_even_when_installed_under_umask_077(tmp_path):
    previous = os.umask(0o077)
    try:
        paths = install_launchers(str(tmp_path / "bin"))
    finally:
        os.umask(previous)
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in paths] == [0o755] * 3
    assert sorted(os.listdir(tmp_path / "bin")) == ["bridge", "flannel", "host-local"]


def test_an_interrupted_install_leaves_no_partial_launcher(tmp_path, monkeypatch):
    directory = tmp_path / "bin"
    install_launchers(str(directory), plugins=("bridge",))
    before = (directory / "bridge").read_bytes()
    real_replace = os.replace

    def interrupted_on_flannel(src, dst):
        if os.path.basename(dst) == "flannel":
            raise KeyboardInterrupt  # after flannel's bytes were written beside it
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted_on_flannel)
    with pytest.raises(KeyboardInterrupt):
        install_launchers(str(directory), plugins=("bridge", "flannel"), worker_socket_dir="/run/elsewhere")
    monkeypatch.undo()
    assert sorted(os.listdir(directory)) == ["bridge"]  # no flannel, no scratch file
    rewritten = (directory / "bridge").read_bytes()
    assert rewritten != before and b"/run/elsewhere" in rewritten  # whole: old or new, never half


def dpkg_database(tmp_path, package_list_name: str, files: list[str]) -> str:
    admin = tmp_path / "dpkg"
    (admin / "info").mkdir(parents=True)
    (admin / "info" / "other.list").write_text("/usr/bin/other\n")
    (admin / "info" / package_list_name).write_text("".join(f"{f}\n" for f in ["/usr/lib/x", *files]))
    return str(admin)


@pytest.mark.parametrize("list_name", ["containernetworking-plugins.list", "containernetworking-plugins:amd64.list"])
def test_replacing_a_packaged_plugin_says_its_upgrade_puts_it_back_and_how_to_divert(tmp_path, list_name):
    from cni_rkt.cli.install import replaced_note

    plugin_dir = tmp_path / "cni"
    plugin_dir.mkdir()
    path = str(plugin_dir / "bridge")
    admin = dpkg_database(tmp_path, list_name, [path])
    note = replaced_note(path, admin)
    assert note.startswith(f"replaced {path} of the Debian package containernetworking-plugins, whose next upgrade")
    assert f"dpkg-divert --local --rename --add {path}" in note
    assert replaced_note(str(plugin_dir / "flannel"), admin).endswith("(reinstall its package to get it back)")
    assert replaced_note(path, str(tmp_path / "no-dpkg")).endswith("(reinstall its package to get it back)")


def test_a_plugin_diverted_with_dpkg_divert_is_not_reported_as_going_back(tmp_path):
    """The real dpkg-divert, on a database of its own (--admindir), as the note tells an operator."""
    from cni_rkt.cli.package_owner import dpkg_owner

    plugin_dir = tmp_path / "cni"
    plugin_dir.mkdir()
    path = plugin_dir / "bridge"
    path.write_bytes(b"\x7fELF the Go bridge")
    admin = dpkg_database(tmp_path, "containernetworking-plugins.list", [str(path)])
    assert dpkg_owner(str(path), admin) == "containernetworking-plugins"
    subprocess.run(["dpkg-divert", "--admindir", admin, "--local", "--rename", "--add", str(path)],
                   check=True, capture_output=True)
    assert (plugin_dir / "bridge.distrib").read_bytes() == b"\x7fELF the Go bridge"
    assert dpkg_owner(str(path), admin) is None


def test_debian_s_go_bridge_is_known_as_its_package_s():
    from cni_rkt.cli.package_owner import dpkg_owner

    assert dpkg_owner("/usr/lib/cni/bridge") == "containernetworking-plugins"
