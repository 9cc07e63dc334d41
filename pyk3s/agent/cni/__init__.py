"""Pod networking on one node: bridge, host-local IPAM, a network namespace and veth per pod."""
