"""Errors of the ingress add-on.

    ConfigError            a piece of dynamic configuration cannot be built (rule, middleware, service,
                           TLS); the message starts with ``ingress:`` and names the object and field.
      RuleError            a router rule does not parse or a matcher argument is invalid.
    Problem                not an exception: a recorded ConfigError attached to one router, service or
                           middleware, shown in the API, the dashboard and ``explain``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "RuleError", "Problem"]


class ConfigError(Exception):
    """A configuration object cannot be built; everything else keeps serving."""


class RuleError(ConfigError):
    """A router rule is invalid (syntax, unknown matcher, bad argument)."""


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # "router" | "service" | "middleware" | "tls"
    name: str
    message: str
