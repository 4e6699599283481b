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

import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(REPO, ".cache", "guest-kernel")
KERNEL_PACKAGE = "linux-image-amd64"  # Debian's metapackage: it depends on the current kernel
BUSYBOX = "/bin/busybox"  # busybox-static: the initramfs's only program
# What the guest loads before it runs anything: the 9p root, then what the tests create.
MODULES = ("virtio_pci", "9pnet_virtio", "9p", "bridge", "veth", "8021q")
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
JOB_MOUNT = "/mnt"  # where the guest sees the job directory (an empty directory on Debian)
BOOT_SECONDS = 60  # on top of the script's own time: a boot under emulation takes 5-10 s

# The guest's PID 1, from the initramfs: load the modules, mount this machine's root read-only
# with the guest's own /tmp, /run, /proc, /sys and /dev, run the job there, power off.
INIT = f"""#!/bin/sh
export PATH=/bin
mkdir -p /proc /sys /dev /host
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev
echo /bin/modprobe > /proc/sys/kernel/modprobe
for module in {" ".join(MODULES)}; do modprobe $module; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 job /host{JOB_MOUNT}
for directory in tmp run var/tmp; do mount -t tmpfs tmpfs /host/$directory; done
mount -t proc proc /host/proc && mount -t sysfs sysfs /host/sys && mount -t devtmpfs devtmpfs /host/dev
mount -t devpts devpts /host/dev/pts
chroot /host /bin/sh {JOB_MOUNT}/job.sh > /host{JOB_MOUNT}/output 2>&1
echo $? > /host{JOB_MOUNT}/status
poweroff -f
"""


@dataclass
class GuestRun:
    status: int | None  # the script's exit status; None if the guest never got to write it
    output: str  # the script's stdout and stderr
    console: str  # the guest's serial console (boot messages, kernel errors)


def kernel_files() -> tuple[str, str]:
    return os.path.join(CACHE, "vmlinuz"), os.path.join(CACHE, "initrd.gz")


def prepare() -> None:
    """Fetch and unpack the kernel package once; later calls find it in the cache."""
    if all(os.path.exists(path) for path in kernel_files()):
        return
    with tempfile.TemporaryDirectory(prefix="cni-rkt-guest-") as work:
        package = _kernel_package()
        subprocess.run(["apt-get", "download", "-q", package], cwd=work, check=True, capture_output=True)
        [deb] = [name for name in os.listdir(work) if name.endswith(".deb")]
        unpacked = os.path.join(work, "unpacked")
        subprocess.run(["dpkg-deb", "-x", os.path.join(work, deb), unpacked], check=True)
        [version] = os.listdir(os.path.join(unpacked, "lib", "modules"))
        os.makedirs(CACHE, exist_ok=True)
        initrd = _build_initramfs(unpacked, version, os.path.join(work, "initrd"))
        shutil.copyfile(os.path.join(unpacked, "boot", f"vmlinuz-{version}"), os.path.join(CACHE, "vmlinuz.new"))
        with open(os.path.join(CACHE, "initrd.gz.new"), "wb") as f:
            f.write(gzip.compress(initrd, compresslevel=1))
        for path in kernel_files():  # the kernel last: its presence says the cache is complete
            os.replace(path + ".new", path)


def _kernel_package() -> str:
    """The kernel image package the metapackage depends on now (apt's lists fetched if need be)."""
    for attempt in range(2):
        shown = subprocess.run(["apt-cache", "depends", KERNEL_PACKAGE], capture_output=True, text=True)
        for line in shown.stdout.splitlines():
            name = line.split(":", 1)[-1].strip()
            if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
                return name
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
    raise RuntimeError(f"apt knows no {KERNEL_PACKAGE}: {shown.stderr.strip()}")


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
    """Boot the guest, run `script` (sh) as root in it with this checkout as cwd, power off."""
    prepare()
    kernel, initrd = kernel_files()
    with tempfile.TemporaryDirectory(prefix="cni-rkt-guest-job-") as job:
        with open(os.path.join(job, "job.sh"), "w") as f:
            f.write(f"export PATH={GUEST_PATH} PYTHONDONTWRITEBYTECODE=1\ncd {REPO}\n{script}\n")
        argv = [
            "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1536",
            "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={job},mount_tag=job,security_model=none,multidevs=remap",
        ]
        with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as qemu:
            try:
                console, _ = qemu.communicate(timeout=timeout + BOOT_SECONDS)
            except subprocess.TimeoutExpired:
                qemu.kill()  # our own qemu, by its PID
                console, _ = qemu.communicate()
        return GuestRun(_read_status(job), _read(job, "output"), console.decode(errors="replace"))


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
