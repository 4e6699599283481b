"""Running iptables-restore, iptables-save and nft: the one place ipMasq execs a program.

Failures become CNIError here: a held xtables lock is "try again later" (11), anything
else the generic code with the tool's own message. Runs in the current network
namespace, like everything in cni_rkt.net.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from cni_rkt.errors import CNIError, ErrorCode

# Seconds iptables-restore waits for the xtables lock (held by kube-proxy, flannel, ...)
# before we report "try again later" instead of hanging the runtime.
XTABLES_LOCK_WAIT_SECONDS = 30
# Where the tools live when a runtime execs us with a bare PATH.
_SYSTEM_DIRS = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_LOCK_HELD = "xtables lock"
_NO_SUCH_OBJECT = "No such file or directory"

SETPRIV = "setpriv"  # util-linux: sets the parent-death signal, then execs the program
# Set once setpriv has refused --pdeathsig (util-linux before 2.33): this process, a worker
# serving many ADDs, does not try it again.
_setpriv_lacks_pdeathsig = False
RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}
SAVE = {4: "iptables-save", 6: "ip6tables-save"}
NFT = "nft"
# The legacy xtables tables set up in the calling thread's netns, one name a line.
_LEGACY_TABLE_NAMES = {4: "/proc/thread-self/net/ip_tables_names", 6: "/proc/thread-self/net/ip6_tables_names"}


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=_SYSTEM_DIRS)


def _run(tool: str, args: list[str], stdin: str = "", dies_with_us: bool = False) -> subprocess.CompletedProcess:
    """`dies_with_us`: the program gets SIGKILL if the thread that started it ends first.
    ADD asks for it: a runtime that times out an ADD (often one whose iptables-restore waits
    for the xtables lock) kills the plugin and runs DEL at once; a program left running would
    make its rules after that DEL, and they would stay. Without setpriv it runs as it is."""
    global _setpriv_lacks_pdeathsig
    path = find_tool(tool)
    if path is None:
        raise CNIError(ErrorCode.INTERNAL, f"failed to locate {tool}")
    guard = find_tool(SETPRIV) if dies_with_us and not _setpriv_lacks_pdeathsig else None
    if guard is not None:
        proc = subprocess.run([guard, "--pdeathsig", "KILL", "--", path, *args], input=stdin,
                              capture_output=True, text=True, check=False)
        if "--pdeathsig" not in proc.stderr:
            return proc
        _setpriv_lacks_pdeathsig = True  # it refused before running the program
    return subprocess.run([path, *args], input=stdin, capture_output=True, text=True, check=False)


def _failure(tool: str, proc: subprocess.CompletedProcess) -> CNIError:
    message = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
    code = ErrorCode.TRY_AGAIN_LATER if _LOCK_HELD in message else ErrorCode.INTERNAL
    return CNIError(code, f"{tool} failed: {message}")


def restore_nat(version: int, script: str, dies_with_us: bool = False) -> CNIError | None:
    """Apply a nat-table script atomically; return the failure instead of raising, since
    callers use a refused script as a cheap "not as expected" answer. (`dies_with_us`: see _run.)"""
    tool = RESTORE[version]
    proc = _run(tool, ["--noflush", f"--wait={XTABLES_LOCK_WAIT_SECONDS}"], script, dies_with_us)
    return None if proc.returncode == 0 else _failure(tool, proc)


def save_nat(version: int) -> str:
    tool = SAVE[version]
    proc = _run(tool, ["-t", "nat"])
    if proc.returncode != 0:
        raise _failure(tool, proc)
    return proc.stdout


def nat_chain_exists(version: int, chain: str) -> bool | None:
    """Whether an iptables nat table of this netns has `chain`, asked without a program:
    iptables-nft keeps its chains in nftables table `nat` (family ip or ip6), which netlink
    answers for. iptables-legacy's tables are only listed in /proc, not their chains: with a
    legacy nat table there, a chain netlink does not see is unknown (None)."""
    from cni_rkt.net.nft_probe import chain_exists

    in_nftables = chain_exists("ip" if version == 4 else "ip6", "nat", chain)
    if in_nftables or not _legacy_nat_table_in_use(version):
        return in_nftables
    return None


def _legacy_nat_table_in_use(version: int) -> bool:
    try:
        with open(_LEGACY_TABLE_NAMES[version], encoding="ascii") as names:
            return "nat" in names.read().split()
    except FileNotFoundError:  # ip_tables (or ip6_tables) is not even loaded, if /proc shows this netns
        return not os.path.isdir(os.path.dirname(_LEGACY_TABLE_NAMES[version]))
    except (OSError, ValueError):
        return True  # cannot tell


def nft_list_table(family: str, table: str, run_when_unsure: bool = True) -> str | None:
    """`nft -j list table`, or None when the table does not exist (asked over netlink
    first, so the usual case, no such table, runs no program). Where netlink cannot tell,
    `run_when_unsure` False answers None too: a caller that only may find rules there (a DEL
    whose config has ipMasq off) need not pay a program to look."""
    from cni_rkt.net.nft_probe import table_exists

    present = table_exists(family, table)
    if present is False or (present is None and not run_when_unsure):
        return None
    proc = _run(NFT, ["-j", "list", "table", family, table])
    if proc.returncode == 0:
        return proc.stdout
    if _NO_SUCH_OBJECT in proc.stderr:
        return None
    raise _failure(NFT, proc)


def nft_apply(script: str, dies_with_us: bool = False) -> None:
    """Run an nft script as one transaction. (`dies_with_us`: see _run.)"""
    proc = _run(NFT, ["-f", "-"], script, dies_with_us)
    if proc.returncode != 0:
        raise _failure(NFT, proc)
