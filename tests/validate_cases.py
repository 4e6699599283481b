"""Building blocks for validate tests: configs as dicts, a run over files in a temp directory."""

from __future__ import annotations

import json
import os
import stat

from cni_rkt.validate.config import ProjectConfig
from cni_rkt.validate.engine import Options, validate

BRIDGE = {
    "cniVersion": "0.4.0", "name": "net1", "type": "bridge", "bridge": "br1", "isGateway": True,
    "ipam": {"type": "host-local", "subnet": "10.22.0.0/16"},
}


def conf(base: dict = BRIDGE, **changes) -> str:
    """`base` with top-level keys changed (None removes one), as JSON text."""
    value = json.loads(json.dumps(base))
    for key, new in changes.items():
        if new is None:
            value.pop(key, None)
        else:
            value[key] = new
    return json.dumps(value, indent=2)


def ipam(**changes) -> str:
    block = dict(BRIDGE["ipam"])
    for key, new in changes.items():
        if new is None:
            block.pop(key, None)
        else:
            block[key] = new
    return conf(ipam=block)


def conflist(*plugins: dict, **top) -> str:
    value = {"cniVersion": "0.4.0", "name": "list1", "plugins": list(plugins)}
    value.update(top)
    return json.dumps({k: v for k, v in value.items() if v is not None}, indent=2)


def run(tmp_path, files: dict[str, str], args: list[str] | None = None, executables: tuple[str, ...] = (),
        **options):
    """Write `files` under tmp_path, validate `args` (default: every file), return the findings."""
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if executables:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for name in executables:
            (bin_dir / name).write_text("#!/bin/sh\n")
            (bin_dir / name).chmod(stat.S_IRWXU)
        options["cni_path"] = [str(bin_dir)]
    for key in ("subnet_env",):
        if key in options:
            options[key] = os.path.join(tmp_path, options[key])
    paths = [os.path.join(tmp_path, a) for a in (args if args is not None else files)]
    options.setdefault("config", ProjectConfig())
    return validate(paths, Options(**options)).findings


def rules(findings) -> set[str]:
    return {f.rule for f in findings}
