"""What the worker tells a caller whose request's child died before replying.

The child replies to its caller itself (pool.py); when it dies first, the worker speaks
for it with the spec's error JSON (code 999), saying whether anything may have changed.
"""

from __future__ import annotations

import json
import os

from cni_rkt.worker.pool import RESULT


def describe(status: int) -> str:
    """What happened to a child, from its wait status."""
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"ended with status {os.waitstatus_to_exitcode(status)} and no result"


def before_running(command: str, status: int) -> str:
    return f"the worker's process for {command} {describe(status)} before running it; nothing was changed"


def while_running(command: str, status: int) -> str:
    return f"the worker's process for {command} {describe(status)}"


def lost_add(what_happened: str, undo_reply: list[bytes] | None) -> str:
    """An ADD's child died (`what_happened`); `undo_reply` is the result of the DEL run for it."""
    what = f"the worker's process for ADD {what_happened}"
    if undo_reply is not None and undo_reply[1] == b"0":
        return f"{what}; DEL ran and removed what it had set up"
    detail = "DEL did not finish either"
    if undo_reply is not None:
        try:
            detail = "DEL failed too: " + json.loads(undo_reply[2]).get("msg", "")
        except (ValueError, AttributeError):
            pass
    return f"{what}; {detail}: run DEL for this container"


def error_result(message: str, stdin: bytes) -> list[bytes]:
    """The result frame carrying `message`, in the request's config version where known."""
    from cni_rkt.errors import CNIError, ErrorCode
    from cni_rkt.protocol.runner import config_version_hint, error_reply

    return [RESULT, b"1", error_reply(CNIError(ErrorCode.INTERNAL, message), config_version_hint(stdin))]
