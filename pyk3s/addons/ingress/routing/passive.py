"""Passive health checks of a servers load balancer (Traefik's ``passiveHealthCheck``).

Every answer a server gives to a proxied request is observed (the exchange calls :meth:`observe` when
it ends): an answer below 500 clears the server's failures; a 5xx answer, or no answer at all, is a
failure. When ``maxFailedAttempts`` failures fall within ``failureWindow``, the server leaves the
rotation; it comes back after ``failureWindow`` unless an active health check is configured too, in
which case that check brings it back (as in Traefik).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config.durations import duration_seconds
from ..config.errors import ConfigError

if TYPE_CHECKING:
    from .health import StatusListener
    from .services import Balancer, Target

__all__ = ["PassiveHealth", "passive_health"]

log = logging.getLogger("pyk3s.ingress")

DEFAULT_WINDOW = 10.0


class PassiveHealth:
    __slots__ = ("service", "balancer", "window", "max_failed", "active", "failures", "timers", "listener", "stopped")

    def __init__(self, service: str, balancer: Balancer, window: float, max_failed: int, active: bool) -> None:
        self.service = service
        self.balancer = balancer
        self.window = window
        self.max_failed = max_failed
        self.active = active  # an active health check brings servers back
        self.failures: dict[str, list[float]] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.listener: StatusListener | None = None
        self.stopped = False  # its configuration was replaced: requests still in flight change nothing

    def observe(self, target: Target, status: int) -> None:
        """One finished attempt on ``target``: its answer's status, 0 when it gave none."""
        if self.stopped:
            return
        if 0 < status < 500:
            if target.url in self.failures:
                del self.failures[target.url]
            return
        now = time.monotonic()
        start = now - self.window
        kept = [t for t in self.failures.get(target.url, ()) if t > start]
        kept.append(now)
        self.failures[target.url] = kept
        if len(kept) < self.max_failed or target.url in self.timers:
            return
        log.warning("ingress: service %s: server %s failed %d times within %gs: out of rotation",
                    self.service, target.url, len(kept), self.window)
        self._set(target, False)
        if self.active:
            return
        loop = asyncio.get_running_loop()
        self.timers[target.url] = loop.call_later(self.window, self._recover, target)

    def _recover(self, target: Target) -> None:
        self.timers.pop(target.url, None)
        self.failures.pop(target.url, None)
        self._set(target, True)

    def _set(self, target: Target, up: bool) -> None:
        self.balancer.set_status(target, up)
        if self.listener is not None:
            self.listener(self.service, target.url, up)

    def stop(self) -> None:
        self.stopped = True
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()


def passive_health(service: str, balancer: Balancer, raw: Mapping[str, Any], active: bool) -> PassiveHealth:
    """A ``passiveHealthCheck`` section (Traefik's defaults: failureWindow 10s, maxFailedAttempts 1)."""
    window = duration_seconds(raw.get("failureWindow"), DEFAULT_WINDOW, "passiveHealthCheck.failureWindow")
    try:
        max_failed = int(raw.get("maxFailedAttempts") or 1)
    except (TypeError, ValueError):
        raise ConfigError("ingress: passiveHealthCheck.maxFailedAttempts must be a number") from None
    if window <= 0 or max_failed <= 0:
        raise ConfigError("ingress: passiveHealthCheck: failureWindow and maxFailedAttempts must be positive")
    checker = PassiveHealth(service, balancer, window, max_failed, active)
    balancer.passive = checker
    for target in balancer.targets:
        target.passive = checker
    return checker
