"""host-local IPAM: config, range arithmetic, round-robin allocation, the on-disk store."""
