"""What a runtime does around the plugins, for `cni-rkt exec`: find a network in a conf dir,
run its plugins with the CNI protocol as libcni (or rkt) would, and keep libcni's result cache.

netconf.py (conf dir -> NetworkList), cache.py (the results cache), libcni.py (the verbs).
"""

from __future__ import annotations

import json

from cni_rkt.errors import CNIError, ErrorCode


def load_json_object(data: bytes, what: str) -> dict:
    """`data` as a JSON object, or a decoding error (code 6) naming `what` it should have been."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CNIError(ErrorCode.DECODING_FAILURE, f"failed to parse {what}: {exc}") from exc
    if not isinstance(value, dict):
        raise CNIError(ErrorCode.DECODING_FAILURE, f"failed to parse {what}: not a JSON object")
    return value
