"""What /proc says of a process, for tests that watch plugins, workers and their children.

Every reader answers for a process that is gone (or ends while read) instead of raising:
tests poll processes that end at any moment.
"""

from __future__ import annotations

import os


def _stat_after_name(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (which may hold spaces): state, ppid, ..."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(") ", 1)[1].split()


def all_pids() -> list[int]:
    """Every process but this one."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]


def parent_of(pid: int) -> int | None:
    try:
        return int(_stat_after_name(pid)[1])
    except (OSError, IndexError, ValueError):
        return None


def is_running(pid: int) -> bool:
    """Exists and is not a zombie waiting to be reaped."""
    try:
        return _stat_after_name(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


def netns_of(pid: int) -> str:
    """Its network namespace as `net:[inode]`, or "" when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def holds_open(pid: int, path: str) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == path for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False
