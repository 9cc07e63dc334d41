"""The configuration model: static configuration from Traefik's flags (``static.py``) and which of those
flags the ingress honours (``flags.py``), the dynamic configuration providers produce (``dynamic.py``),
Go durations (``durations.py``), Go regular expressions of middleware options (``goregexp.py``) and the
errors of a piece of configuration that cannot be built (``errors.py``)."""

__all__: list[str] = []
