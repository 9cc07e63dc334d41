"""Traefik-compatible ingress: providers -> DynamicConfig -> compile -> proxy (routers, middlewares, services).

Layout: ``providers/`` (Kubernetes objects -> :class:`~.dynamic.DynamicConfig`, pure functions),
``rules/`` (v2/v3 rule grammar), ``compile.py`` (the routing table), ``middlewares/`` (one module per
kind, table in ``middlewares/__init__.py``), ``services.py`` (load balancing), ``http/`` (request, replies, side requests), ``proxy/`` (sockets,
uvloop + httptools), ``tls.py``, ``api.py`` + ``dashboard/``, ``metrics.py``, ``runner.py`` (watch glue,
workers), ``cli.py`` (``pyk3s traefik``), ``explain.py`` (``pyk3s ingress explain``).
"""

__all__: list[str] = []
