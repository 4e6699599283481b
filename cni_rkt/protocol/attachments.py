"""The runtime's list of live attachments that GC must keep (CNI 1.1.0).

One reader for every plugin: GC deletes what is *not* listed, so a missing or
malformed list is a config error (code 7) and never read as "nothing is valid".
"""

from __future__ import annotations

import json

from cni_rkt.errors import invalid_config
from cni_rkt.protocol.spec import VALID_ATTACHMENTS_KEYS


def valid_attachments(config: dict) -> set[tuple[str, str]]:
    """(containerID, ifname) pairs from cni.dev/valid-attachments, or the older cni.dev/attachments."""
    key = next((k for k in VALID_ATTACHMENTS_KEYS if k in config), VALID_ATTACHMENTS_KEYS[0])
    raw = config.get(key)
    if not isinstance(raw, list):
        raise invalid_config(f"GC needs {key!r}: a list of {{containerID, ifname}} objects, got {json.dumps(raw)}", key)
    valid = set()
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("containerID"), str)
                and isinstance(item.get("ifname", ""), str)):
            raise invalid_config(f"{key}: invalid attachment {json.dumps(item)}: needs a string containerID and ifname", key)
        valid.add((item["containerID"], item.get("ifname", "")))
    return valid
