"""kube-proxy's job in nftables: Services + EndpointSlices (+ hostPorts) compiled into one ruleset,
applied atomically. ``compile`` is pure; ``apply`` runs ``nft -f``; ``proxier`` watches and debounces."""
