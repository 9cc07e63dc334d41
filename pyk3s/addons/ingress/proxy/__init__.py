"""The HTTP data plane: per-worker state, listeners, client and upstream protocols (HTTP/1.1 on httptools,
HTTP/2 on h2), exchanges, and what the proxy serves or keeps itself (api@internal, TLS certificates for
entrypoints, request metrics, gRPC statuses)."""

__all__: list[str] = []
