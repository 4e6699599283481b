"""`cni-rkt` itself: what every subcommand shares."""

import os
import subprocess
import sys

import pytest

from cni_rkt.cli.main import main
from plugin_calls import REPO_ROOT


@pytest.mark.parametrize("argv", [["validate", "--list-rules"], ["ipam", "list", "--data-dir", "/nonexistent-dir"]])
def test_a_reader_gone_away_ends_the_command_quietly(argv):
    """`cni-rkt ... | head`: no traceback, no error message, the status a shell gives SIGPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        proc = subprocess.run([sys.executable, "-m", "cni_rkt.cli.main", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, env={"PYTHONPATH": REPO_ROOT}, check=False)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, b"")


def test_version_prints_the_package_version(capsys):
    import cni_rkt

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"cni-rkt {cni_rkt.__version__}\n"


@pytest.mark.parametrize("command, says", [
    (["install"], "2 bad arguments"),
    (["demo"], "2 bad arguments"),
    (["validate"], "3 an input could not be read"),
    (["exec"], "1 a plugin failed"),
    (["ipam", "list"], "show the reservations"),
    (["ipam", "reclaim"], "release reservations"),
    (["worker", "status"], "3 when none runs"),
    (["worker", "stop"], "end the running workers"),
])
def test_every_commands_help_says_what_it_does_and_its_exit_status(capsys, command, says):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "exit status:" in out and says in " ".join(out.split())


def test_ctrl_c_ends_a_command_with_130_and_no_traceback(monkeypatch, capsys):
    """Ctrl-C in `cni-rkt exec` or `validate`: what it was doing unwinds, the user sees no Python internals."""
    import cni_rkt.cli.validate

    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cni_rkt.cli.validate, "execute", interrupted)
    assert main(["validate", "x.conf"]) == 130
    assert "Traceback" not in capsys.readouterr().err
