"""``--serversTransport.*``: the static ServersTransport ``default@internal`` that load balancers naming
no transport use (Traefik static.ServersTransport; maxIdleConnsPerHost 200 unless set)."""

from __future__ import annotations

import os

from .durations import duration_seconds
from .dynamic import ForwardingTimeouts, ServersTransport
from .errors import ConfigError
from .flag_values import flag_bool

__all__ = ["default_servers_transport"]


def _file_or_content(value: str) -> str:
    """Traefik's FileOrContent: the file's text when the value names a file, else the value itself."""
    if "-----BEGIN" not in value and os.path.isfile(value):
        with open(value, encoding="utf-8") as fh:
            return fh.read()
    return value


def default_servers_transport(flags: dict[str, str]) -> ServersTransport:
    prefix = "serverstransport."
    sub = {k[len(prefix):]: v for k, v in flags.items() if k.startswith(prefix)}
    base = ForwardingTimeouts()

    def timeout(key: str, default: float) -> float:
        return duration_seconds(sub.get(f"forwardingtimeouts.{key}"), default, f"serversTransport.forwardingTimeouts.{key}")

    try:
        idle = int(sub.get("maxidleconnsperhost", "200") or 200)
    except ValueError:
        raise ConfigError("traefik: serversTransport.maxIdleConnsPerHost: not a number: "
                          f"{sub['maxidleconnsperhost']!r}") from None
    return ServersTransport(
        insecure_skip_verify=flag_bool(sub.get("insecureskipverify")),
        root_cas=tuple(_file_or_content(v.strip()) for v in sub.get("rootcas", "").split(",") if v.strip()),
        max_idle_conns_per_host=idle,
        forwarding_timeouts=ForwardingTimeouts(
            dial_timeout=timeout("dialtimeout", base.dial_timeout),
            response_header_timeout=timeout("responseheadertimeout", 0.0),
            idle_conn_timeout=timeout("idleconntimeout", base.idle_conn_timeout),
            read_idle_timeout=timeout("readidletimeout", 0.0), ping_timeout=timeout("pingtimeout", base.ping_timeout)))
