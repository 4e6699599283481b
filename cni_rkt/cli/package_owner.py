"""Which Debian package ships a file, read from dpkg's database (no dpkg run).

A plugin directory such as /usr/lib/cni belongs to a package (containernetworking-plugins):
`cni-rkt install` replacing a file there lasts only until that package's next upgrade,
unless the file is diverted (`dpkg-divert`), which dpkg then honours.
"""

from __future__ import annotations

import os

DPKG_DIR = "/var/lib/dpkg"


def dpkg_owner(path: str, dpkg_dir: str = DPKG_DIR) -> str | None:
    """The package that ships `path` and would put its own file back on upgrade; None when
    no package lists it, it is diverted, or there is no dpkg database."""
    candidates = {path, os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))}
    if candidates & _diverted(dpkg_dir):
        return None
    info = os.path.join(dpkg_dir, "info")
    try:
        lists = sorted(name for name in os.listdir(info) if name.endswith(".list"))
    except OSError:
        return None
    for name in lists:
        try:
            with open(os.path.join(info, name), encoding="utf-8", errors="replace") as f:
                if candidates & {line.rstrip("\n") for line in f}:
                    return name.removesuffix(".list").split(":")[0]  # "pkg:amd64.list" for multi-arch
        except OSError:
            continue
    return None


def _diverted(dpkg_dir: str) -> set[str]:
    """The paths dpkg diverts: the file holds (from, to, package) line triples."""
    try:
        with open(os.path.join(dpkg_dir, "diversions"), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return set()
    return set(lines[0::3])
