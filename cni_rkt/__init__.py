"""cni-rkt: CNI networking for rkt-style contained networks, in Python."""

__version__ = "0.1.0"
