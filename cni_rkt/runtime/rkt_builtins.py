"""rkt's built-in networks, from its stage1 (`etc/rkt/net.d`): what `--net=default` runs when
no user file in /etc/rkt/net.d is named `default` (a user file of the same name replaces one).

Both are ptp networks with host-local, at cniVersion 0.1.0: rkt ships its own ptp in the
stage1, so `cni-rkt exec` needs a ptp plugin on its CNI path (Debian's is /usr/lib/cni/ptp).
"""

from __future__ import annotations

STAGE1_DIR = "<rkt stage1>/etc/rkt/net.d"

# The files' names and bytes, as rkt's stage1 holds them (tab-indented JSON).
BUILTIN_FILES: dict[str, tuple[str, bytes]] = {
    "default": ("99-default.conf", b"""{
\t"cniVersion": "0.1.0",
\t"name": "default",
\t"type": "ptp",
\t"ipMasq": true,
\t"ipam": {
\t\t"type": "host-local",
\t\t"subnet": "172.16.28.0/24",
\t\t"routes": [
\t\t\t{ "dst": "0.0.0.0/0" }
\t\t]
\t}
}
"""),
    "default-restricted": ("99-default-restricted.conf", b"""{
\t"cniVersion": "0.1.0",
\t"name": "default-restricted",
\t"type": "ptp",
\t"ipMasq": false,
\t"ipam": {
\t\t"type": "host-local",
\t\t"subnet": "172.31.0.0/16"
\t}
}
"""),
}


def builtin_subnets() -> dict[str, str]:
    """Network name -> its subnet, for validate's overlap checks."""
    import json

    return {name: json.loads(raw)["ipam"]["subnet"] for name, (_file, raw) in BUILTIN_FILES.items()}
