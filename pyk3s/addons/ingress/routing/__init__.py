"""From dynamic configuration to what serves a request: ``compile.py`` builds the routing table
(``table.py``: routes by entrypoint and Host, the fast lane's choice per host) and the compiled
services (``services.py``: load balancing), and keeps the runtime status the API shows."""

__all__: list[str] = []
