"""Traefik-compatible ingress: providers -> DynamicConfig -> compile -> proxy (routers, middlewares, services).

Layout, from the bottom up (a module imports only modules listed before it):
``errors.py``, ``durations.py`` (the one Go-duration parser), ``dynamic.py`` (the DynamicConfig),
``static.py`` (static flags, provider options), ``metrics.py``, ``http/`` (HttpRequest, replies, the
side-request client), ``rules/`` (v2/v3 rule grammar), ``services.py`` (load balancing), ``tls.py``,
``providers/`` (Kubernetes objects -> DynamicConfig, pure functions, table PROVIDERS),
``middlewares/`` (one module per kind, table MIDDLEWARES), ``routing.py`` (the routing table),
``compile.py`` (DynamicConfig -> routing table and runtime status), ``api.py`` + ``dashboard/``,
``proxy/`` (sockets, exchanges, upstream pools: uvloop + httptools), ``runner.py`` (watch glue, workers),
``explain.py`` (``pyk3s ingress explain``), ``cli.py`` (``pyk3s traefik``).
"""

__all__: list[str] = []
