"""`cni-rkt demo` end to end, as a newcomer runs it: it passes and leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from conftest import needs_root
from plugin_calls import REPO_ROOT

DEMO = [sys.executable, "-m", "cni_rkt.cli.main", "demo"]
ENV = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": REPO_ROOT, "PYTHONUNBUFFERED": "1"}


def leftovers(output: str) -> tuple[list[str], bool]:
    """The demo's namespaces still present, and whether its scratch directory still exists."""
    prefix = re.search(r"netns (cnrdemo[0-9a-f]+)-host", output).group(1)
    scratch = re.search(r"plugins in (\S+)/bin", output).group(1)
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [n for n in names.split() if n.startswith(prefix)], os.path.exists(scratch)


@needs_root
def test_demo_passes_and_removes_its_namespaces():
    proc = subprocess.run(DEMO, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "result: all steps passed" in proc.stdout
    assert re.search(r"pod0 -> pod1 +ok", proc.stdout) and re.search(r"pod0 -> gateway +ok", proc.stdout)
    assert "no ipMasq rule left" in proc.stdout
    assert leftovers(proc.stdout) == ([], False)


@needs_root
def test_interrupted_demo_still_cleans_up():
    proc = subprocess.Popen(DEMO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    try:
        for line in proc.stdout:
            output += line
            if line.startswith("[1/5]"):
                proc.send_signal(signal.SIGINT)
                break
        output += proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "cleaned up" in output
    assert leftovers(output) == ([], False)
