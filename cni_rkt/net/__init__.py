"""Links, addresses, routes, namespaces, sysctls and firewall rules: the kernel side.

pyroute2 is imported only from this package, and its message modules without the cost of
its package __init__ (see pyroute2_lazy.py).
"""

from cni_rkt.net import pyroute2_lazy

pyroute2_lazy.install()
