"""A throwaway virtual machine on Debian's stock kernel, for tests this machine's kernel cannot run.

This machine's kernel has no bridge VLAN filtering, so on it the VLAN tests can only check that
ADD fails cleanly. Debian's `linux-image-amd64` has it. `run(script)` boots that kernel under
qemu (software emulation: no KVM needed) with this machine's root file system shared read-only
over 9p, so the guest runs the same Python, venv, iproute2 and Go plugins on another kernel,
and runs `script` there as root. The guest has no network device; its /tmp, /run and /var/tmp
are its own (tmpfs), and it powers off when the script ends. Nothing of this machine's network
changes, and qemu is ended by PID if the guest overstays its timeout.

`prepare()` fetches the kernel package with apt and keeps only what the guest needs (the kernel
and a few modules, in an initramfs) under .cache/guest-kernel; scripts/setup.sh calls it, as
`python tests/guest_vm.py prepare`.
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import os
import shlex
import signal
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHES = os.path.join(REPO, ".cache", "guest-kernel")
KERNEL_PACKAGE = "linux-image-amd64"  # Debian's metapackage: it depends on the current kernel
BUSYBOX = "/bin/busybox"  # busybox-static: the initramfs's only program
# What the guest loads before it runs anything: the 9p root, then what the tests create and
# look at (nf_tables: iptables-save and nft list the rules in every host-state snapshot).
MODULES = ("virtio_pci", "9pnet_virtio", "9p", "bridge", "veth", "8021q", "nf_tables")
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GUEST_OWN = ("/tmp", "/run", "/var/tmp")  # the guest's tmpfs: what the host has there is hidden
JOB_MOUNT = "/run/cni-rkt-job"  # where the guest sees the job directory (in its own /run)
BOOT_SECONDS = 60  # on top of the script's own time: a boot under emulation takes 5-10 s
PR_SET_PDEATHSIG = 1

# The guest's PID 1, from the initramfs: load the modules, mount this machine's root read-only
# with the guest's own /tmp, /run, /proc, /sys and /dev, run the job there, power off. The job
# mounts the checkout and the interpreter itself where they hide under the guest's own (run()).
INIT = f"""#!/bin/sh
export PATH=/bin
mkdir -p /proc /sys /dev /host
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev
echo /bin/modprobe > /proc/sys/kernel/modprobe
for module in {" ".join(MODULES)}; do modprobe $module; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /host
for directory in {" ".join(GUEST_OWN)}; do mount -t tmpfs tmpfs /host$directory; done
mkdir -p /host{JOB_MOUNT}
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 job /host{JOB_MOUNT}
mount -t proc proc /host/proc && mount -t sysfs sysfs /host/sys && mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts && mount -t tmpfs tmpfs /host/dev/shm
chroot /host /bin/sh {JOB_MOUNT}/job.sh > /host{JOB_MOUNT}/output 2>&1
echo $? > /host{JOB_MOUNT}/status
poweroff -f
"""


@dataclass
class GuestRun:
    status: int | None  # the script's exit status; None if the guest never got to write it
    output: str  # the script's stdout and stderr
    console: str  # the guest's serial console (boot messages, kernel errors)
    timed_out: bool = False  # the guest was ended after the script's time and BOOT_SECONDS


def _cache() -> str:
    """This INIT's and MODULES' cache: a change to either builds a new initramfs."""
    key = hashlib.sha256(f"{INIT}{MODULES}".encode()).hexdigest()[:12]
    return os.path.join(CACHES, key)


def kernel_files() -> tuple[str, str]:
    return os.path.join(_cache(), "vmlinuz"), os.path.join(_cache(), "initrd.gz")


def prepare() -> None:
    """Fetch and unpack the kernel package once; later calls find it in the cache."""
    if all(os.path.exists(path) for path in kernel_files()):
        return
    shutil.rmtree(CACHES, ignore_errors=True)  # another INIT's
    with tempfile.TemporaryDirectory(prefix="cni-rkt-guest-") as work:
        _download(_kernel_package(), work)
        [deb] = [name for name in os.listdir(work) if name.endswith(".deb")]
        unpacked = os.path.join(work, "unpacked")
        subprocess.run(["dpkg-deb", "-x", os.path.join(work, deb), unpacked], check=True)
        [version] = os.listdir(os.path.join(unpacked, "lib", "modules"))
        os.makedirs(_cache(), exist_ok=True)
        initrd = _build_initramfs(unpacked, version, os.path.join(work, "initrd"))
        kernel_file, initrd_file = kernel_files()
        with open(initrd_file + ".new", "wb") as f:
            f.write(gzip.compress(initrd, compresslevel=1))
        os.replace(initrd_file + ".new", initrd_file)
        shutil.copyfile(os.path.join(unpacked, "boot", f"vmlinuz-{version}"), kernel_file + ".new")
        os.replace(kernel_file + ".new", kernel_file)  # prepare() is done once both are there


def _download(package: str, directory: str) -> None:
    errors = []

    def download() -> bool | None:
        done = subprocess.run(["apt-get", "download", "-q", package], cwd=directory, capture_output=True, text=True)
        errors.append(done.stderr.strip())
        return True if done.returncode == 0 else None

    _with_fresh_lists(download, lambda: f"apt-get download {package} failed: {errors[-1]}")


def _kernel_package() -> str:
    """The kernel image package the metapackage depends on now."""
    def depends() -> str | None:
        shown = subprocess.run(["apt-cache", "depends", KERNEL_PACKAGE], capture_output=True, text=True)
        for line in shown.stdout.splitlines():
            name = line.split(":", 1)[-1].strip()
            if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
                return name
        return None

    return _with_fresh_lists(depends, lambda: f"apt knows no {KERNEL_PACKAGE}")


def _with_fresh_lists(ask, failure):
    """ask()'s answer; if None, again after fetching apt's lists (missing on a new machine, or
    naming a kernel version the archive has replaced since)."""
    answer = ask()
    if answer is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        answer = ask()
    if answer is None:
        raise RuntimeError(failure())
    return answer


def _build_initramfs(unpacked: str, version: str, root: str) -> bytes:
    """busybox, MODULES with what they depend on, and INIT, as a newc cpio archive."""
    modules_dir = os.path.join(unpacked, "lib", "modules", version)
    subprocess.run([BUSYBOX, "depmod", "-b", unpacked, version], check=True)
    needed = _with_dependencies(os.path.join(modules_dir, "modules.dep"), MODULES)
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    for applet in ("sh", "mount", "mkdir", "modprobe", "chroot", "poweroff", "echo"):
        os.symlink("busybox", os.path.join(root, "bin", applet))
    for relative in needed:
        target = os.path.join(root, "lib", "modules", version, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(modules_dir, relative), target)
    subprocess.run([BUSYBOX, "depmod", "-b", root, version], check=True)
    with open(os.path.join(root, "init"), "w") as f:
        f.write(INIT)
    os.chmod(os.path.join(root, "init"), 0o755)
    names = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, check=True).stdout
    archive = subprocess.run([BUSYBOX, "cpio", "-o", "-H", "newc"], cwd=root, input=names.encode(),
                             capture_output=True, check=True)
    return archive.stdout


def _with_dependencies(modules_dep: str, modules: tuple[str, ...]) -> set[str]:
    """The module files (paths relative to the modules directory) of `modules` and their dependencies."""
    depends = {}
    with open(modules_dep) as f:
        for line in f:
            path, _, needs = line.partition(":")
            depends[os.path.basename(path).removesuffix(".ko")] = [path, *needs.split()]
    found = set()
    for module in modules:
        if module not in depends:
            raise RuntimeError(f"the guest kernel has no module {module}")
        found.update(depends[module])
    return found


def run(script: str, timeout: float) -> GuestRun:
    """Boot the guest, run `script` (sh) as root in it with this checkout as cwd, power off.

    The script runs under `timeout` in the guest, and qemu is killed (by its PID) if the guest
    overstays that, if this call is interrupted, or if this process dies (PR_SET_PDEATHSIG).
    """
    prepare()
    kernel, initrd = kernel_files()
    shares = {"checkout": REPO, "interpreter": sys.prefix}
    with tempfile.TemporaryDirectory(prefix="cni-rkt-guest-job-") as job:
        with open(os.path.join(job, "job.sh"), "w") as f:
            f.write(f"export PATH={GUEST_PATH} PYTHONDONTWRITEBYTECODE=1\n")
            for tag, path in shares.items():
                if _hidden_in_guest(path):
                    f.write(f"mkdir -p {shlex.quote(path)} && mount -t 9p -o trans=virtio,version=9p2000.L,ro "
                            f"{tag} {shlex.quote(path)}\n")
            f.write(f"cd {shlex.quote(REPO)}\ntimeout {int(timeout)} sh -c {shlex.quote(script)}\n")
        argv = [
            "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1536",
            "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={job},mount_tag=job,security_model=none,multidevs=remap",
            *(option for tag, path in shares.items() for option in
              ("-virtfs", f"local,path={path},mount_tag={tag},security_model=none,readonly=on,multidevs=remap")),
        ]  # no -accel kvm: on this machine /dev/kvm exists but a KVM guest hangs at boot
        qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)
        timed_out, console = False, b""
        try:
            console, _ = qemu.communicate(timeout=timeout + BOOT_SECONDS)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if qemu.poll() is None:
                qemu.kill()  # our own qemu, by its PID
                console += qemu.communicate()[0] or b""
        return GuestRun(_read_status(job), _read(job, "output"), console.decode(errors="replace"), timed_out)


def _hidden_in_guest(path: str) -> bool:
    return any(path == own or path.startswith(own + "/") for own in GUEST_OWN) and not (
        path != REPO and path.startswith(REPO + "/"))  # (inside the checkout: mounted with it)


def _die_with_parent() -> None:
    """In qemu's child process before exec: the kernel kills it when the test process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _read(job: str, name: str) -> str:
    try:
        with open(os.path.join(job, name), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _read_status(job: str) -> int | None:
    text = _read(job, "status").strip()
    return int(text) if text.isdigit() else None


if __name__ == "__main__":
    if sys.argv[1:] != ["prepare"]:
        sys.exit("usage: python tests/guest_vm.py prepare")
    prepare()
