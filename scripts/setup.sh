#!/usr/bin/env bash
# Set up a fresh Debian bookworm machine (as root) to run and test cni-rkt:
# the system packages the plugins and tests use, and a virtualenv in .venv with
# cni-rkt installed (editable) with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  python3 python3-venv     # the interpreter the plugins run on
  iproute2 iputils-ping    # netns set-up in tests and the demo
  iptables nftables        # ipMasq backends
  containernetworking-plugins  # the reference Go plugins, for side-by-side tests
  procps util-linux        # ps, nsenter, flock
  qemu-system-x86 busybox-static  # a guest on Debian's kernel, for the VLAN tests (tests/guest_vm.py)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# Debian's kernel for that guest (this machine's has no bridge VLAN filtering), kept in .cache/
.venv/bin/python tests/guest_vm.py prepare
