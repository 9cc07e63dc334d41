"""Static configuration from Traefik's CLI flags.

Flags use Traefik's spelling with case-insensitive keys (``--entryPoints.web.address=:8000``,
``--entrypoints.web.http.redirections.entryPoint.to=websecure``, ``--providers.kubernetescrd``,
``--api.dashboard=true``, ``--api.insecure``, ``--ping``, ``--metrics.prometheus``, ``--log.level``).
A flag without ``=value`` is ``true``. The routers these flags imply (api, dashboard, ping, prometheus,
entrypoint redirections) come from the internal provider, ``providers/internal.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .durations import duration_seconds
from .dynamic import ForwardingTimeouts, ServersTransport
from .errors import ConfigError

__all__ = ["EntryPoint", "ProviderOptions", "AccessLogOptions", "PrometheusOptions", "StaticConfig", "static_problems",
           "parse_flags", "static_from_flags", "MAX_INT"]

MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ProviderOptions:
    """A Kubernetes provider's static options (``--providers.kubernetescrd.*``, ``--providers.kubernetesingress.*``)."""

    allow_cross_namespace: bool = False
    allow_empty_services: bool = False
    allow_external_name_services: bool = False
    ingress_class: str = ""
    default_rule_syntax: str = "v3"
    strict_prefix_matching: bool = False
    namespaces: tuple[str, ...] = ()
    published_service: str = ""  # "ns/name" for Ingress status
    native_lb_by_default: bool = False
    disable_cluster_scope_resources: bool = False
    disable_ingress_class_lookup: bool = False
    cross_provider_namespaces: tuple[str, ...] | None = None  # None: any namespace may refer to other providers
    throttle_duration: float = 0.0  # seconds between configuration rebuilds (throttleDuration)
    problems: tuple[str, ...] = ()  # options given that pyk3s does not honour (logged at start)


@dataclass(frozen=True, slots=True)
class AccessLogOptions:
    """``--accesslog.*`` (Traefik otypes.AccessLog); read by ``proxy/accesslog.py``."""

    file_path: str = ""
    format: str = "common"  # common | genericCLF | json
    buffering_size: int = 0
    add_internals: bool = False
    status_codes: tuple[str, ...] = ()
    retry_attempts: bool = False
    min_duration: float = 0.0  # seconds
    fields_default_mode: str = "keep"  # keep | drop
    field_names: Mapping[str, str] = field(default_factory=dict)  # field -> keep | drop
    headers_default_mode: str = "drop"  # keep | drop | redact
    header_names: Mapping[str, str] = field(default_factory=dict)  # header -> keep | drop | redact
    query_parameters_mode: str = "keep"  # keep | drop
    problems: tuple[str, ...] = ()  # options given that pyk3s does not honour (logged at start)


@dataclass(frozen=True, slots=True)
class PrometheusOptions:
    """``--metrics.prometheus.*`` (Traefik otypes.Prometheus); read by ``proxy/metrics.py``."""

    entrypoints: bool = True  # addEntryPointsLabels
    routers: bool = False  # addRoutersLabels
    services: bool = True  # addServicesLabels
    buckets: tuple[float, ...] = (0.1, 0.3, 1.2, 5.0)
    problems: tuple[str, ...] = ()  # --metrics.* options pyk3s does not honour (logged at start)


@dataclass(frozen=True, slots=True)
class EntryPoint:
    name: str
    address: str
    tls: bool = False
    tls_options: str = ""
    redirect_to: str = ""
    redirect_scheme: str = "https"
    redirect_permanent: bool = True
    redirect_priority: int = MAX_INT - 1
    forwarded_insecure: bool = False
    trusted_ips: tuple[str, ...] = ()
    as_default: bool = False

    @property
    def host(self) -> str:
        host = self.address.rsplit(":", 1)[0]
        return host.strip("[]") or ""

    @property
    def port(self) -> int:
        port = self.address.rsplit(":", 1)[-1].split("/")[0]
        return int(port) if port.isdigit() else 0


@dataclass(frozen=True, slots=True)
class StaticConfig:
    entrypoints: Mapping[str, EntryPoint] = field(default_factory=dict)
    api: bool = False
    api_dashboard: bool = True
    api_insecure: bool = False
    ping: bool = False
    ping_entrypoint: str = "traefik"
    prometheus: bool = False
    prometheus_entrypoint: str = "traefik"
    prometheus_options: PrometheusOptions = field(default_factory=lambda: PrometheusOptions())
    crd: ProviderOptions | None = None
    ingress: ProviderOptions | None = None
    log_level: str = "ERROR"
    kubeconfig: str = ""
    workers: int = 0
    default_rule_syntax: str = "v3"
    access_log: AccessLogOptions | None = None  # None: access logs off
    servers_transport: ServersTransport = field(default_factory=ServersTransport)  # default@internal
    transport_problems: tuple[str, ...] = ()  # --serversTransport.* options pyk3s does not honour
    raw: Mapping[str, str] = field(default_factory=dict)  # every flag, keys lower-cased


def static_problems(static: StaticConfig) -> list[str]:
    """Every option given that pyk3s does not honour, one message each (``pyk3s traefik`` logs them)."""
    out = list(static.transport_problems) + list(static.prometheus_options.problems)
    if static.access_log is not None:
        out += static.access_log.problems
    for provider in (static.crd, static.ingress):
        if provider is not None:
            out += provider.problems
    return out


def parse_flags(argv: list[str]) -> dict[str, str]:
    """``--a.B.c=v`` / ``--a.b.c v`` / ``--flag`` -> {"a.b.c": "v", "flag": "true"} (keys lower-cased)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            raise ConfigError(f"traefik: unexpected argument {arg!r}")
        key = arg.lstrip("-")
        if "=" in key:
            key, value = key.split("=", 1)
        elif i < len(argv) and not argv[i].startswith("-"):
            value = argv[i]
            i += 1
        else:
            value = "true"
        out[key.lower()] = value
    return out


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    v = value.strip().lower()
    if v in ("true", "1", "yes", ""):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ConfigError(f"traefik: invalid boolean {value!r}")


# provider options pyk3s reads (lower-cased)
_PROVIDER_KNOWN = frozenset((
    "allowcrossnamespace", "allowemptyservices", "allowexternalnameservices", "ingressclass", "strictprefixmatching",
    "namespaces", "ingressendpoint.publishedservice", "nativelbbydefault", "disableclusterscoperesources",
    "disableingressclasslookup", "crossprovidernamespaces", "throttleduration",
))


def _provider(flags: dict[str, str], prefix: str, syntax: str) -> ProviderOptions | None:
    if not any(k == prefix or k.startswith(prefix + ".") for k in flags):
        return None
    if flags.get(prefix) is not None and not _bool(flags.get(prefix), True):
        return None

    def get(name: str) -> str | None:
        return flags.get(f"{prefix}.{name}")

    ns = tuple(n for n in (get("namespaces") or "").split(",") if n)
    cross = get("crossprovidernamespaces")
    problems = tuple(f"{key}: not supported by pyk3s, ignored" for key in sorted(flags)
                     if key.startswith(prefix + ".") and key[len(prefix) + 1:] not in _PROVIDER_KNOWN)
    return ProviderOptions(
        allow_cross_namespace=_bool(get("allowcrossnamespace")),
        allow_empty_services=_bool(get("allowemptyservices")),
        allow_external_name_services=_bool(get("allowexternalnameservices")),
        ingress_class=get("ingressclass") or "",
        default_rule_syntax=syntax,
        strict_prefix_matching=_bool(get("strictprefixmatching")),
        namespaces=ns,
        published_service=get("ingressendpoint.publishedservice") or "",
        native_lb_by_default=_bool(get("nativelbbydefault")),
        disable_cluster_scope_resources=_bool(get("disableclusterscoperesources")),
        disable_ingress_class_lookup=_bool(get("disableingressclasslookup")),
        cross_provider_namespaces=None if cross is None else tuple(n for n in cross.split(",") if n),
        throttle_duration=duration_seconds(get("throttleduration"), 0.0, f"{prefix}.throttleDuration"),
        problems=problems,
    )


_ACCESS_LOG_KNOWN = ("filepath", "format", "bufferingsize", "addinternals", "dualoutput", "filters", "filters.statuscodes",
                     "filters.retryattempts", "filters.minduration", "fields.defaultmode", "fields.headers.defaultmode",
                     "fields.queryparameters.defaultmode")


def _access_log(flags: dict[str, str]) -> AccessLogOptions | None:
    """``--accesslog`` and ``--accesslog.*``: on when any is given (``--accesslog=false`` turns it off)."""
    prefix = "accesslog"
    if not any(k == prefix or k.startswith(prefix + ".") for k in flags):
        return None
    if flags.get(prefix) is not None and not _bool(flags.get(prefix), True):
        return None
    sub = {k[len(prefix) + 1:]: v for k, v in flags.items() if k.startswith(prefix + ".")}
    problems = []
    fmt = sub.get("format", "common") or "common"
    formats = {"common": "common", "genericclf": "genericCLF", "json": "json"}
    if fmt.lower() not in formats:
        problems.append(f"accesslog.format: unsupported format {fmt!r}, common is used (as Traefik does)")
    modes = {"keep", "drop"}

    def mode(key: str, allowed: set[str], default: str) -> str:
        value = sub.get(key, default).lower()
        if value not in allowed:
            problems.append(f"accesslog.{key}: {value!r} is not one of {', '.join(sorted(allowed))}; {default} is used")
            return default
        return value

    names = {k[len("fields.names."):]: v.lower() for k, v in sub.items() if k.startswith("fields.names.")}
    headers = {k[len("fields.headers.names."):]: v.lower() for k, v in sub.items()
               if k.startswith("fields.headers.names.")}
    for key in sorted(sub):
        if key in _ACCESS_LOG_KNOWN or key.startswith(("fields.names.", "fields.headers.names.")):
            continue
        problems.append(f"accesslog.{key}: not supported by pyk3s, ignored")
    codes = tuple(c.strip() for c in sub.get("filters.statuscodes", "").split(",") if c.strip())
    for code in codes:
        low, _, high = code.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ConfigError(f"traefik: accesslog.filters.statuscodes: invalid status code range {code!r}")
    try:
        buffering = int(sub.get("bufferingsize", "0") or 0)
    except ValueError:
        raise ConfigError(f"traefik: accesslog.bufferingsize: not a number: {sub['bufferingsize']!r}") from None
    return AccessLogOptions(
        file_path=sub.get("filepath", ""), format=formats.get(fmt.lower(), "common"), buffering_size=buffering,
        add_internals=_bool(sub.get("addinternals")), status_codes=codes,
        retry_attempts=_bool(sub.get("filters.retryattempts")),
        min_duration=duration_seconds(sub.get("filters.minduration"), 0.0, "accesslog.filters.minduration"),
        fields_default_mode=mode("fields.defaultmode", modes, "keep"), field_names=names,
        headers_default_mode=mode("fields.headers.defaultmode", modes | {"redact"}, "drop"), header_names=headers,
        query_parameters_mode=mode("fields.queryparameters.defaultmode", modes, "keep"), problems=tuple(problems))


def _file_or_content(value: str) -> str:
    """Traefik's FileOrContent: the file's text when the value names a file, else the value itself."""
    if "-----BEGIN" not in value and os.path.isfile(value):
        with open(value, encoding="utf-8") as fh:
            return fh.read()
    return value


def _servers_transport(flags: dict[str, str]) -> tuple[ServersTransport, tuple[str, ...]]:
    """``--serversTransport.*``: the default@internal transport (maxIdleConnsPerHost 200 unless set)."""
    prefix = "serverstransport."
    sub = {k[len(prefix):]: v for k, v in flags.items() if k.startswith(prefix)}
    problems = [f"serversTransport.{k}: not supported by pyk3s, ignored" for k in sorted(sub)
                if k not in ("insecureskipverify", "rootcas", "maxidleconnsperhost")
                and not k.startswith("forwardingtimeouts.")]
    base = ForwardingTimeouts()

    def timeout(key: str, default: float) -> float:
        return duration_seconds(sub.get(f"forwardingtimeouts.{key}"), default, f"serversTransport.forwardingTimeouts.{key}")

    try:
        idle = int(sub.get("maxidleconnsperhost", "200") or 200)
    except ValueError:
        raise ConfigError(f"traefik: serversTransport.maxIdleConnsPerHost: not a number: {sub['maxidleconnsperhost']!r}") from None
    return ServersTransport(
        insecure_skip_verify=_bool(sub.get("insecureskipverify")),
        root_cas=tuple(_file_or_content(v.strip()) for v in sub.get("rootcas", "").split(",") if v.strip()),
        max_idle_conns_per_host=idle,
        forwarding_timeouts=ForwardingTimeouts(
            dial_timeout=timeout("dialtimeout", base.dial_timeout),
            response_header_timeout=timeout("responseheadertimeout", 0.0),
            idle_conn_timeout=timeout("idleconntimeout", base.idle_conn_timeout),
            read_idle_timeout=timeout("readidletimeout", 0.0), ping_timeout=timeout("pingtimeout", base.ping_timeout)),
    ), tuple(problems)


_PROMETHEUS_KNOWN = frozenset(("", "entrypoint", "addentrypointslabels", "addrouterslabels", "addserviceslabels",
                               "buckets", "manualrouting"))


def _prometheus(flags: dict[str, str]) -> PrometheusOptions:
    """``--metrics.prometheus.*`` (Traefik otypes.Prometheus) as StaticConfig fields."""
    sub = {k[len("metrics.prometheus"):].lstrip("."): v for k, v in flags.items() if k.startswith("metrics.prometheus")}
    problems = [f"metrics.prometheus.{k}: not supported by pyk3s, ignored" for k in sorted(sub) if k not in _PROMETHEUS_KNOWN]
    problems += [f"{k}: only Prometheus metrics are supported by pyk3s, ignored" for k in sorted(flags)
                 if k.startswith("metrics.") and not k.startswith("metrics.prometheus")]
    if _bool(sub.get("manualrouting")):
        problems.append("metrics.prometheus.manualRouting: not supported by pyk3s; /metrics stays on its entry point")
    try:
        buckets = tuple(float(b) for b in sub["buckets"].split(",") if b.strip()) if sub.get("buckets") else (0.1, 0.3, 1.2, 5.0)
    except ValueError:
        raise ConfigError(f"traefik: metrics.prometheus.buckets: not a list of numbers: {sub['buckets']!r}") from None
    return PrometheusOptions(entrypoints=_bool(sub.get("addentrypointslabels"), True),
                             routers=_bool(sub.get("addrouterslabels")),
                             services=_bool(sub.get("addserviceslabels"), True),
                             buckets=tuple(sorted(buckets)), problems=tuple(problems))


def static_from_flags(argv: list[str]) -> StaticConfig:
    flags = parse_flags(argv)
    eps: dict[str, dict[str, str]] = {}
    for key, value in flags.items():
        if key.startswith("entrypoints."):
            parts = key.split(".", 2)
            eps.setdefault(parts[1], {})[parts[2] if len(parts) > 2 else ""] = value
    entrypoints: dict[str, EntryPoint] = {}
    for name, f in eps.items():
        if "address" not in f:
            raise ConfigError(f"traefik: entrypoint {name}: address is required")
        to = f.get("http.redirections.entrypoint.to", "")
        entrypoints[name] = EntryPoint(
            name=name, address=f["address"], tls=_bool(f.get("http.tls")) or bool(f.get("http.tls.options")),
            tls_options=f.get("http.tls.options", ""), redirect_to=to,
            redirect_scheme=f.get("http.redirections.entrypoint.scheme", "https"),
            redirect_permanent=_bool(f.get("http.redirections.entrypoint.permanent"), True),
            redirect_priority=int(f.get("http.redirections.entrypoint.priority", MAX_INT - 1)),
            forwarded_insecure=_bool(f.get("forwardedheaders.insecure")),
            trusted_ips=tuple(x for x in f.get("forwardedheaders.trustedips", "").split(",") if x),
            as_default=_bool(f.get("asdefault")))
    api = any(k == "api" or k.startswith("api.") for k in flags) and _bool(flags.get("api"), True)
    ping = "ping" in flags or any(k.startswith("ping.") for k in flags)
    prom = any(k.startswith("metrics.prometheus") for k in flags) and _bool(flags.get("metrics.prometheus"), True)
    insecure = _bool(flags.get("api.insecure"))
    if (insecure or ping or prom) and "traefik" not in entrypoints:
        entrypoints["traefik"] = EntryPoint(name="traefik", address=":8080")
    if not entrypoints:
        entrypoints["http"] = EntryPoint(name="http", address=":80")
    syntax = flags.get("core.defaultrulesyntax", "v3")
    transport, transport_problems = _servers_transport(flags)
    for target in (flags.get("ping.entrypoint"), flags.get("metrics.prometheus.entrypoint")):
        if target and target not in entrypoints:
            raise ConfigError(f"traefik: entrypoint {target!r} does not exist")
    return StaticConfig(
        entrypoints=entrypoints, api=api or insecure, api_dashboard=_bool(flags.get("api.dashboard"), True),
        api_insecure=insecure, ping=ping and _bool(flags.get("ping"), True),
        ping_entrypoint=flags.get("ping.entrypoint", "traefik"), prometheus=prom,
        prometheus_entrypoint=flags.get("metrics.prometheus.entrypoint", "traefik"),
        crd=_provider(flags, "providers.kubernetescrd", syntax),
        ingress=_provider(flags, "providers.kubernetesingress", syntax),
        log_level=flags.get("log.level", "ERROR").upper(), kubeconfig=flags.get("kubeconfig", ""),
        workers=int(flags.get("workers", "0") or 0), default_rule_syntax=syntax, access_log=_access_log(flags),
        servers_transport=transport, transport_problems=transport_problems, prometheus_options=_prometheus(flags),
        raw=flags)
