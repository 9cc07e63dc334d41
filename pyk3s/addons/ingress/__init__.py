"""Traefik-compatible ingress: providers -> DynamicConfig -> compile -> proxy (routers, middlewares, services).

Packages, from the bottom up (each imports only packages listed before it):
``config/`` (static flags, the DynamicConfig, Go durations, errors), ``http/`` (HttpRequest, replies,
the side-request client), ``rules/`` (v2/v3 rule grammar), ``providers/`` (Kubernetes objects ->
DynamicConfig, pure functions, table PROVIDERS), ``middlewares/`` (one module per kind, table
MIDDLEWARES), ``routing/`` (compiled services, the routing table, the compile step), ``proxy/``
(sockets, exchanges, upstream pools: uvloop + httptools; api@internal, TLS, metrics).
On top, this package's own modules: ``runner.py`` (watch glue, workers), ``explain.py``
(``pyk3s ingress explain``), ``cli.py`` (``pyk3s traefik``); ``dashboard/`` holds the dashboard's files.
"""

__all__: list[str] = []
