"""HTTP messages as routers, middlewares, services and the API see them: the parsed request, replies the
proxy writes itself, and a small client for side requests. Nothing here owns a socket (``proxy/`` does)."""

__all__: list[str] = []
