"""NetworkPolicy enforcement: the allow index (pyk3s.netpol) compiled to one nftables table, kept
incrementally, applied atomically."""
