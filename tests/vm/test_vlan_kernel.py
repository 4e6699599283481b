"""The VLAN tests on a kernel that has bridge VLAN filtering: Debian's, in a guest (tests/guest_vm.py).

On this machine's kernel those tests can only check that ADD fails cleanly and leaves nothing
behind. In the guest, EXPECT_VLAN_FILTERING makes them fail if the kernel lacks it, so they take
the other branch: they inspect the ports' VLANs, ping through the VLAN's gateway port, and compare
with Go's plugin.
"""

import re
import sys

from conftest import needs_root
from guest_vm import run
from sandbox import EXPECT_VLAN_FILTERING

VLAN_TESTS = {
    "tests/netns/test_bridge.py::test_vlan_access_and_trunk_ports": 3,
    "tests/netns/test_bridge.py::test_vlan_gateway_port_carries_the_gateway_address": 1,
    "tests/netns/test_bridge.py::test_vlan_add_check_del_restores_the_host": 3,
    "tests/reference/test_bridge_vs_go.py::test_vlan_ports_match_go_s": 2,
}
GUEST_TIMEOUT = 1200.0  # seconds; under emulation these few tests take 4-8 minutes


@needs_root
def test_the_vlan_tests_pass_on_a_kernel_with_vlan_filtering():
    pytest = f"{sys.executable} -m pytest -p no:cacheprovider -q -rA {' '.join(VLAN_TESTS)}"
    guest = run(f"uname -r\n{EXPECT_VLAN_FILTERING}=1 {pytest}", timeout=GUEST_TIMEOUT)
    report = f"{guest.output[-6000:]}\n--- guest console ---\n{guest.console[-3000:]}"
    assert not guest.timed_out and guest.status == 0, report
    passed = re.findall(r"^PASSED (\S+?)(?:\[.*\])?$", guest.output, re.MULTILINE)
    assert {test: passed.count(test) for test in VLAN_TESTS} == VLAN_TESTS, report
    summary = guest.output.rpartition("short test summary info")[2]  # not the tests' captured logs
    assert not re.search(r"^(FAILED|ERROR|SKIPPED|XFAIL)", summary, re.MULTILINE), report
