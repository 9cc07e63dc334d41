"""The HTTP data plane: per-worker state, listeners, client and upstream protocols, exchanges, and what
the proxy serves or keeps itself (api@internal, TLS certificates for entrypoints, request metrics)."""

__all__: list[str] = []
