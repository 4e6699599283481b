"""The rtnetlink socket (cni_rkt/net/rtnl.py) against the kernel, checked with iproute2.

Each test runs a short script in the sandbox host netns; what the kernel then holds is
read back with `ip -j`, so a message encoded wrongly shows up as a wrong link, address or
route, not merely as a different byte.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

from bridge_harness import ip_json, link_details

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_script(sandbox, body: str, *args: str) -> dict:
    code = "import json, os, socket, sys\nfrom cni_rkt.net.rtnl import RouteSocket\n" + textwrap.dedent(body)
    done = sandbox.run([sys.executable, "-c", code, *args], env={"PYTHONPATH": REPO_ROOT, "PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout or b"{}")


def test_links_made_through_the_socket_are_what_ip_shows(sandbox):
    pod = sandbox.pod()
    made = run_script(sandbox, """
        s = RouteSocket()
        s.new_link([("IFLA_IFNAME", "br0"), ("IFLA_MTU", 1400), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])
        bridge = s.get_link(name="br0")
        fd = os.open(sys.argv[1], os.O_RDONLY)
        peer = {"attrs": [("IFLA_IFNAME", "eth0"), ("IFLA_NET_NS_FD", fd), ("IFLA_ADDRESS", "0a:58:0a:00:00:09")]}
        info = [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]
        s.new_link([("IFLA_IFNAME", "vethtest"), ("IFLA_LINKINFO", {"attrs": info})])
        veth = s.get_link(name="vethtest")
        s.set_link(veth["index"], [("IFLA_MASTER", bridge["index"])])
        data = [("IFLA_BRPORT_MODE", 1), ("IFLA_BRPORT_ISOLATED", 1)]
        slave = [("IFLA_INFO_SLAVE_KIND", "bridge"), ("IFLA_INFO_SLAVE_DATA", {"attrs": data})]
        s.set_link(veth["index"], [("IFLA_LINKINFO", {"attrs": slave})])
        s.set_link(veth["index"], flags=1, change=1)
        ports = [m.get_attr("IFLA_IFNAME") for m in s.dump_links(master=bridge["index"])]
        everything = [m.get_attr("IFLA_IFNAME") for m in s.dump_links()]
        print(json.dumps({"ports": ports, "all": everything, "bridge mtu": bridge.get_attr("IFLA_MTU")}))
    """, pod)
    assert made["bridge mtu"] == 1400  # read before a 1500-byte port joined, which raises it
    assert made["ports"] == ["vethtest"]
    assert set(made["all"]) == {"lo", "br0", "vethtest"}

    port = link_details(sandbox, "vethtest")
    assert port["master"] == "br0" and "UP" in port["flags"]
    assert port["linkinfo"]["info_slave_data"]["hairpin"] is True
    assert port["linkinfo"]["info_slave_data"]["isolated"] is True
    pod_end = link_details(sandbox, "eth0", netns=os.path.basename(pod))
    assert pod_end["address"] == "0a:58:0a:00:00:09"


def test_addresses_and_routes_made_through_the_socket(sandbox):
    dumped = run_script(sandbox, """
        s = RouteSocket()
        peer = {"attrs": [("IFLA_IFNAME", "dum1")]}
        info = [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]
        s.new_link([("IFLA_IFNAME", "dum0"), ("IFLA_LINKINFO", {"attrs": info})])
        index = s.get_link(name="dum0")["index"]
        s.set_link(index, flags=1, change=1)
        s.set_link(s.get_link(name="dum1")["index"], flags=1, change=1)
        s.change_address(True, index, socket.AF_INET, "10.1.0.1", 16)
        s.change_address(True, index, socket.AF_INET6, "fd00::1", 64)
        s.change_address(True, index, socket.AF_INET, "10.2.0.1", 24)
        s.change_address(False, index, socket.AF_INET, "10.2.0.1", 24)
        fields = {"family": socket.AF_INET, "dst_len": 24, "table": 100, "proto": 3, "scope": 0, "type": 1}
        attrs = [("RTA_DST", "10.9.0.0"), ("RTA_OIF", index), ("RTA_GATEWAY", "10.1.0.5"), ("RTA_PRIORITY", 7),
                 ("RTA_TABLE", 100), ("RTA_METRICS", {"attrs": [("RTAX_MTU", 1300)]})]
        s.new_route(fields, attrs)
        v6 = [m.get_attr("IFA_ADDRESS") for m in s.dump_addresses(index, socket.AF_INET6)]
        every = sorted(f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}" for m in s.dump_addresses(index))
        print(json.dumps({"v6": v6, "all": every}))
    """)
    assert dumped["v6"][0] == "fd00::1"
    assert "10.1.0.1/16" in dumped["all"] and "fd00::1/64" in dumped["all"]
    assert not any(a.startswith("10.2.0.1") for a in dumped["all"])  # deleted again
    routes = ip_json(sandbox, "route show table 100")
    assert routes == [{"dst": "10.9.0.0/24", "gateway": "10.1.0.5", "dev": "dum0",
                       "metric": 7, "flags": [], "metrics": [{"mtu": 1300}]}]


def test_kernel_refusals_raise_with_the_errno(sandbox):
    codes = run_script(sandbox, """
        from pyroute2.netlink.exceptions import NetlinkError
        s = RouteSocket()
        codes = {}
        for label, call in (("missing", lambda: s.get_link(name="nosuchlink")),
                            ("duplicate", lambda: s.new_link([("IFLA_IFNAME", "lo"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])),
                            ("delete missing", lambda: s.delete_link(9999))):
            try:
                call()
            except NetlinkError as exc:
                codes[label] = exc.code
        codes["after errors"] = s.get_link(name="lo")["index"]  # the socket is still in step
        print(json.dumps(codes))
    """)
    assert codes == {"missing": 19, "duplicate": 17, "delete missing": 19, "after errors": 1}


def test_a_removal_is_announced_once_the_link_and_its_addresses_are_gone(sandbox):
    """RemovalWatch: the kernel's RTM_DELLINK announcement for one link, not for another;
    once the second end of a deleted veth is announced, the pair, its addresses and its
    bridge port are gone from every view, sysfs too."""
    seen = run_script(sandbox, """
        import select, threading
        from cni_rkt.net.rtnl import RemovalWatch
        s = RouteSocket()
        info = [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": [("IFLA_IFNAME", "vb")]})]})]
        s.new_link([("IFLA_IFNAME", "va"), ("IFLA_LINKINFO", {"attrs": info})])
        s.new_link([("IFLA_IFNAME", "br0"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])
        s.new_link([("IFLA_IFNAME", "other"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])
        va, vb, br, other = (s.get_link(name=n)["index"] for n in ("va", "vb", "br0", "other"))
        s.set_link(vb, [("IFLA_MASTER", br)])
        s.change_address(True, va, socket.AF_INET, "10.77.0.2", 24)
        watch = RemovalWatch()
        s.delete_link(other)
        other_announced = watch.announced(va)
        deleting = threading.Thread(target=RouteSocket().delete_link, args=(va,))
        deleting.start()
        while not watch.announced(vb):  # the peer of the end deleted: announced last
            select.select([watch], [], [], 1)
        names = [m.get_attr("IFLA_IFNAME") for m in s.dump_links()]
        ports = [m.get_attr("IFLA_IFNAME") for m in s.dump_links(master=br)]
        addresses = os.popen("ip -j addr show").read()
        brif = os.listdir("/sys/class/net/br0/brif")
        deleting.join()
        print(json.dumps({"other": other_announced, "names": names, "ports": ports, "brif": brif,
                          "10.77 left": "10.77.0.2" in addresses}))
    """)
    assert seen == {"other": False, "names": ["lo", "br0"], "ports": [], "brif": [], "10.77 left": False}
