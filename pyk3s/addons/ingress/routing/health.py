"""Active health checks of a servers load balancer (Traefik's ``healthCheck``, pkg/healthcheck).

:func:`health_spec` reads a ``healthCheck`` section (Traefik's defaults: interval 30s, timeout 5s,
followRedirects true, mode http). A :class:`HealthChecker` probes the servers of one
:class:`~.services.Balancer` in the background: the servers believed up every ``interval``, those
believed down every ``unhealthyInterval``. A probe is an HTTP request to the server (path, method,
scheme, port, Host, headers as configured, through the load balancer's ServersTransport TLS settings);
it passes on ``status`` when one is set, else on any 2xx/3xx answer (``mode: grpc``: the gRPC health
protocol, routing/health_grpc.py). Each result goes to the balancer
(``set_status``), which takes the server out of (or back into) rotation and tells its parents when the
whole service goes down or up. The proxy starts the checkers of a configuration when it is applied and
stops them when the next one replaces it or the proxy closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from ..config.durations import duration_seconds
from ..config.errors import ConfigError
from ..http.fetch import fetch
from .health_grpc import probe_grpc

if TYPE_CHECKING:
    from .services import Balancer, Target

__all__ = ["HealthSpec", "health_spec", "HealthChecker", "StatusListener", "probe"]

log = logging.getLogger("pyk3s.ingress")

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 5.0
MAX_REDIRECTS = 10  # Go's http.Client follows at most 10

StatusListener = Callable[[str, str, bool], None]
"""Called with (service, server URL, up) after each probe (the proxy keeps traefik_service_server_up)."""


@dataclass(frozen=True, slots=True)
class HealthSpec:
    path: str = ""
    method: str = "GET"
    status: int = 0  # 0: any 2xx/3xx answer passes
    scheme: str = ""
    hostname: str = ""
    port: int = 0
    interval: float = DEFAULT_INTERVAL
    unhealthy_interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    headers: tuple[tuple[str, str], ...] = ()
    follow_redirects: bool = True
    mode: str = "http"


def health_spec(raw: Mapping[str, Any]) -> HealthSpec:
    """A ``healthCheck`` section (Traefik's JSON spelling) -> HealthSpec; ConfigError names the bad field."""
    mode = str(raw.get("mode") or "http")
    if mode not in ("http", "grpc"):
        raise ConfigError(f"ingress: healthCheck.mode: unknown mode {mode!r} (http or grpc)")
    path = str(raw.get("path") or "")
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        raise ConfigError(f"ingress: healthCheck.path must be a relative URL, got: {path!r}")
    # Traefik replaces a zero or negative interval or timeout by its default
    interval = duration_seconds(raw.get("interval"), DEFAULT_INTERVAL, "healthCheck.interval")
    interval = interval if interval > 0 else DEFAULT_INTERVAL
    unhealthy = duration_seconds(raw.get("unhealthyInterval"), interval, "healthCheck.unhealthyInterval")
    unhealthy = unhealthy if unhealthy > 0 else DEFAULT_INTERVAL
    timeout = duration_seconds(raw.get("timeout"), DEFAULT_TIMEOUT, "healthCheck.timeout")
    timeout = timeout if timeout > 0 else DEFAULT_TIMEOUT
    try:
        status = int(raw.get("status") or 0)
        port = int(raw.get("port") or 0)
    except (TypeError, ValueError):
        raise ConfigError("ingress: healthCheck.status and healthCheck.port must be numbers") from None
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise ConfigError("ingress: healthCheck.headers must be a map of header names to values")
    follow = raw.get("followRedirects")
    return HealthSpec(path=path, method=str(raw.get("method") or "GET").upper(), status=status,
                      scheme=str(raw.get("scheme") or ""), hostname=str(raw.get("hostname") or ""), port=port,
                      interval=interval, unhealthy_interval=unhealthy, timeout=timeout,
                      headers=tuple((str(k), str(v)) for k, v in headers.items()),
                      follow_redirects=follow is not False, mode=mode)


def _probe_url(target: Target, spec: HealthSpec) -> str:
    """Traefik newRequest: the path resolved against the server URL, then scheme and port replaced."""
    base = urlsplit(urljoin(target.url, spec.path) if spec.path else target.url)
    scheme = spec.scheme or base.scheme or "http"
    netloc = base.netloc
    if spec.port:
        host = base.hostname or ""
        netloc = f"[{host}]:{spec.port}" if ":" in host else f"{host}:{spec.port}"
    return urlunsplit((scheme, netloc, base.path or "/", base.query, ""))


async def probe(target: Target, spec: HealthSpec) -> str | None:
    """One health check of ``target``: None when it passes, else why it failed."""
    if spec.mode == "grpc":
        return await probe_grpc(target, spec)
    url = _probe_url(target, spec)
    ctx, server_name = target.tls()
    headers = list(spec.headers)
    try:
        async with asyncio.timeout(spec.timeout):
            for _ in range(MAX_REDIRECTS + 1):
                if urlsplit(url).scheme == "https" and ctx is None:
                    from ssl import create_default_context

                    ctx = create_default_context()
                answer = await fetch(url, spec.method, headers, timeout=spec.timeout,
                                     host_header=spec.hostname or None, ssl_context=ctx,
                                     server_hostname=server_name)
                location = next((v for k, v in answer.headers if k.lower() == "location"), "")
                if not (spec.follow_redirects and answer.status in (301, 302, 303, 307, 308) and location):
                    break
                url = urljoin(url, location)
            else:
                return "stopped after 10 redirects"
    except TimeoutError:
        return f"HTTP request failed: no answer within {spec.timeout:g}s"
    except (OSError, ValueError) as err:
        return f"HTTP request failed: {err}"
    except Exception as err:  # noqa: BLE001 - a malformed answer (httptools errors) fails the probe
        return f"HTTP request failed: {type(err).__name__}: {err}"
    code = answer.status
    if spec.status == 0 and not 200 <= code < 400:
        return f"received error status code: {code}"
    if spec.status and code != spec.status:
        return f"received error status code: {code} expected status code: {spec.status}"
    return None


@dataclass(slots=True)
class HealthChecker:
    """The background probes of one load balancer's servers."""

    service: str
    balancer: Balancer
    spec: HealthSpec
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    listener: StatusListener | None = None

    def start(self, loop: asyncio.AbstractEventLoop, listener: StatusListener | None = None) -> None:
        self.listener = listener
        self.tasks = [loop.create_task(self._loop(True, self.spec.interval)),
                      loop.create_task(self._loop(False, self.spec.unhealthy_interval))]

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tasks = []

    async def _loop(self, healthy: bool, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            # the servers to check are chosen once per tick, as in Traefik: one that moves during the
            # check is checked next by the other loop
            await self.check([t for t in self.balancer.targets if t.up is healthy])

    async def check(self, targets: Iterable[Target]) -> None:
        """Probe ``targets`` now (concurrently) and pass each result to the balancer."""
        targets = list(targets)
        if not targets:
            return
        results = await asyncio.gather(*(probe(t, self.spec) for t in targets))
        for target, error in zip(targets, results, strict=True):
            up = error is None
            if not up:
                log.warning("ingress: service %s: health check of %s failed: %s", self.service, target.url, error)
            elif not target.up:
                log.info("ingress: service %s: server %s is healthy again", self.service, target.url)
            self.balancer.set_status(target, up)
            if self.listener is not None:
                self.listener(self.service, target.url, up)


def stop_all(checkers: Iterable[HealthChecker]) -> None:
    for checker in checkers:
        checker.stop()
