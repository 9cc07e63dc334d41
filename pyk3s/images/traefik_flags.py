"""Which of Traefik's command-line flags the built-in ``pyk3s/traefik`` image honours, and why not the others.

The ingress accepts every Traefik flag so that K3s's arguments and a user's ``additionalArguments``
start it unchanged, but a flag it accepts and then ignores must be said out loud: at start the
ingress logs a warning and records a Warning event ``UnsupportedArgument`` on its own pod for each
such flag (``pyk3s.addons.ingress.config.flags``), and the helm controller lists them in the
HelmChart's status. Both read this one table, which describes the image.

``HONOURED`` is the table: a flag key (lower case, entry point names as ``<ep>``, access-log field and
header names as ``<name>``) and, optionally, a
check of its value that returns why that value is not honoured. A flag whose key is not in the table
is not honoured. Add a row when the ingress learns a flag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["HONOURED", "Unhonoured", "unhonoured"]

Check = Callable[[str], str | None]


def _address(value: str) -> str | None:
    """Entry point addresses: ``[host]:port`` with an optional ``/tcp`` or ``/udp``."""
    _, _, proto = value.partition("/")
    if proto.lower() in ("", "tcp", "udp"):
        return None
    return f"unknown protocol {proto!r}"


def _log_format(value: str) -> str | None:
    return None if value.lower() == "common" else f"log format {value!r} is not produced (logs use one text format)"


def _access_log_format(value: str) -> str | None:
    if value.lower() in ("common", "genericclf", "json"):
        return None
    return f"access log format {value!r} is not known: the common format is used (as in Traefik)"


def _modes(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        if value.lower() in allowed or not value.strip():  # empty (as the chart renders an unset mode): the default
            return None
        return f"mode {value!r} is not one of {', '.join(allowed)}: the default mode is used (as in Traefik)"
    return check


def _off(what: str) -> Check:
    """An option honoured only in its default (off) setting."""
    def check(value: str) -> str | None:
        return None if value.strip().lower() in ("false", "0", "no") else what
    return check


HONOURED: dict[str, Check | None] = {
    "entrypoints.<ep>.address": _address,
    "entrypoints.<ep>.asdefault": None,
    "entrypoints.<ep>.http.tls": None,
    "entrypoints.<ep>.http.tls.options": None,
    "entrypoints.<ep>.http.redirections.entrypoint.to": None,
    "entrypoints.<ep>.http.redirections.entrypoint.scheme": None,
    "entrypoints.<ep>.http.redirections.entrypoint.permanent": None,
    "entrypoints.<ep>.http.redirections.entrypoint.priority": None,
    "entrypoints.<ep>.forwardedheaders.trustedips": None,
    "entrypoints.<ep>.forwardedheaders.insecure": None,
    "entrypoints.<ep>.http2.maxconcurrentstreams": None,
    "entrypoints.<ep>.http2.maxdecoderheadertablesize": None,
    "entrypoints.<ep>.http2.maxencoderheadertablesize": None,
    "entrypoints.<ep>.transport.lifecycle.gracetimeout": None,
    "entrypoints.<ep>.proxyprotocol": None,
    "entrypoints.<ep>.proxyprotocol.insecure": None,
    "entrypoints.<ep>.proxyprotocol.trustedips": None,
    "entrypoints.<ep>.transport.respondingtimeouts.readtimeout": None,
    "entrypoints.<ep>.transport.respondingtimeouts.writetimeout": None,
    "entrypoints.<ep>.transport.respondingtimeouts.idletimeout": None,
    "entrypoints.<ep>.udp.timeout": None,
    "entrypoints.<ep>.reuseport": None,  # every listener uses SO_REUSEPORT (one per worker process)
    "tcpserverstransport.dialtimeout": None,
    "tcpserverstransport.dialkeepalive": None,
    "tcpserverstransport.terminationdelay": None,
    "tcpserverstransport.tls.insecureskipverify": None,
    "tcpserverstransport.tls.rootcas": None,
    "providers.kubernetescrd.nativelbbydefault": None,
    "api": None,
    "api.dashboard": None,
    "api.insecure": None,
    "ping": None,
    "ping.entrypoint": None,
    "metrics.prometheus": None,
    "metrics.prometheus.entrypoint": None,
    "providers.kubernetescrd": None,
    "providers.kubernetescrd.allowcrossnamespace": None,
    "providers.kubernetescrd.allowemptyservices": None,
    "providers.kubernetescrd.allowexternalnameservices": None,
    "providers.kubernetescrd.ingressclass": None,
    "providers.kubernetescrd.namespaces": None,
    "providers.kubernetescrd.disableclusterscoperesources": None,
    "providers.kubernetescrd.crossprovidernamespaces": None,
    "providers.kubernetescrd.throttleduration": None,
    "providers.kubernetesgateway": None,
    "providers.kubernetesgateway.namespaces": None,
    "providers.kubernetesgateway.labelselector": None,
    "providers.kubernetesgateway.experimentalchannel": None,
    "providers.kubernetesgateway.nativelbbydefault": None,
    "providers.kubernetesgateway.throttleduration": None,
    "providers.kubernetesgateway.statusaddress.ip": None,
    "providers.kubernetesgateway.statusaddress.hostname": None,
    "providers.kubernetesgateway.statusaddress.service.name": None,
    "providers.kubernetesgateway.statusaddress.service.namespace": None,
    "providers.kubernetesingress": None,
    "providers.kubernetesingress.allowemptyservices": None,
    "providers.kubernetesingress.allowexternalnameservices": None,
    "providers.kubernetesingress.ingressclass": None,
    "providers.kubernetesingress.namespaces": None,
    "providers.kubernetesingress.strictprefixmatching": None,
    "providers.kubernetesingress.ingressendpoint.publishedservice": None,
    "providers.kubernetesingress.nativelbbydefault": None,
    "providers.kubernetesingress.disableclusterscoperesources": None,
    "providers.kubernetesingress.disableingressclasslookup": None,
    "providers.kubernetesingress.crossprovidernamespaces": None,
    "providers.kubernetesingress.throttleduration": None,
    "core.defaultrulesyntax": None,
    # access logs (pyk3s.addons.ingress.proxy.accesslog); stdout is always written (no OTLP), hence dualOutput
    "accesslog": None,
    "accesslog.filepath": None,
    "accesslog.format": _access_log_format,
    "accesslog.bufferingsize": None,  # lines are written once per turn of the event loop in any case
    "accesslog.addinternals": None,
    "accesslog.dualoutput": None,
    "accesslog.filters": None,
    "accesslog.filters.statuscodes": None,
    "accesslog.filters.retryattempts": None,
    "accesslog.filters.minduration": None,
    "accesslog.fields.defaultmode": _modes("keep", "drop"),
    "accesslog.fields.names.<name>": _modes("keep", "drop"),
    "accesslog.fields.headers.defaultmode": _modes("keep", "drop", "redact"),
    "accesslog.fields.headers.names.<name>": _modes("keep", "drop", "redact"),
    "accesslog.fields.queryparameters.defaultmode": _modes("keep", "drop"),
    # Prometheus metrics (pyk3s.addons.ingress.proxy.metrics)
    "metrics.prometheus.addentrypointslabels": None,
    "metrics.prometheus.addrouterslabels": None,
    "metrics.prometheus.addserviceslabels": None,
    "metrics.prometheus.buckets": None,
    "metrics.prometheus.manualrouting": _off("manual routing is not offered: /metrics stays on its entry point"),
    # the default ServersTransport (pyk3s.addons.ingress.routing.transports)
    "serverstransport.insecureskipverify": None,
    "serverstransport.rootcas": None,
    "serverstransport.maxidleconnsperhost": None,
    "serverstransport.forwardingtimeouts.dialtimeout": None,
    "serverstransport.forwardingtimeouts.responseheadertimeout": None,
    "serverstransport.forwardingtimeouts.idleconntimeout": None,
    "serverstransport.forwardingtimeouts.readidletimeout": None,  # HTTP/2 health-check PINGs to servers
    "serverstransport.forwardingtimeouts.pingtimeout": None,
    "log.level": None,
    "log.format": _log_format,
    "log.nocolor": None,  # logs are never coloured
    # pyk3s never checks for new versions nor sends usage data, whatever these say
    "global.checknewversion": None,
    "global.sendanonymoususage": None,
    # pyk3s additions
    "kubeconfig": None,
    "workers": None,
    "objects": None,
    "udprelay": None,  # checked by the ingress itself: a bad value stops it with the reason
}

_EP = re.compile(r"^entrypoints\.([^.]+)\.")
_NAMES = re.compile(r"^(accesslog\.fields\.(?:headers\.)?names)\.[^.]+$")


@dataclass(frozen=True, slots=True)
class Unhonoured:
    flag: str
    reason: str

    def __str__(self) -> str:
        return f"{self.flag}: {self.reason}"


def _table_key(key: str) -> str:
    return _NAMES.sub(r"\1.<name>", _EP.sub("entrypoints.<ep>.", key))


def _why(key: str, value: str) -> str | None:
    table_key = _table_key(key)
    if table_key not in HONOURED:
        return "not honoured by pyk3s's ingress (accepted and ignored)"
    check = HONOURED[table_key]
    return check(value) if check is not None else None


def unhonoured(argv: Iterable[str]) -> list[Unhonoured]:
    """The arguments among ``argv`` (Traefik's ``--key=value`` / ``--key`` form) the ingress ignores."""
    out: list[Unhonoured] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            continue
        key, sep, value = arg.lstrip("-").partition("=")
        if not sep:
            if i < len(args) and not args[i].startswith("-"):
                value = args[i]
                i += 1
            else:
                value = "true"
        reason = _why(key.lower(), value)
        if reason is not None:
            out.append(Unhonoured(arg, reason))
    return out
