"""Static configuration from Traefik's CLI flags.

Flags use Traefik's spelling with case-insensitive keys (``--entryPoints.web.address=:8000``,
``--entrypoints.web.http.redirections.entryPoint.to=websecure``, ``--providers.kubernetescrd``,
``--api.dashboard=true``, ``--api.insecure``, ``--ping``, ``--metrics.prometheus``, ``--log.level``).
A flag without ``=value`` is ``true``. The routers these flags imply (api, dashboard, ping, prometheus,
entrypoint redirections) come from the internal provider, ``providers/internal.py``.

Entry points (``entry_point_fields``): ``address=[host]:port[/tcp|/udp]``, ``proxyProtocol.insecure``,
``proxyProtocol.trustedIPs`` (PROXY protocol v1/v2 headers read from those peers, ignored from others),
``transport.respondingTimeouts.readTimeout|writeTimeout|idleTimeout`` (60s, none, 180s) and
``udp.timeout`` (3s, a UDP session's idle time). ``--tcpServersTransport.*`` is the default transport
of TCP services (dial timeout 30s, keep-alive 15s).
HTTP/2 per entry point (``with_http2``): ``http2.maxConcurrentStreams`` (250; 0 means the default),
``http2.maxDecoderHeaderTableSize`` and ``http2.maxEncoderHeaderTableSize`` (4096), negative values are
errors as in Traefik; ``transport.lifeCycle.graceTimeOut`` (10s): how long a stopping worker lets
requests in flight finish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .durations import duration_seconds
from .dynamic import ServersTransport
from .dynamic_tcp import DEFAULT_TCP_TRANSPORT, TCPServersTransport, TLSClientConfig
from .errors import ConfigError
from .flag_values import flag_bool as _bool
from .flag_values import switched_on
from .observability import AccessLogOptions, PrometheusOptions, access_log_options, prometheus_options
from .transport_flags import default_servers_transport

__all__ = ["EntryPoint", "ProviderOptions", "GatewayOptions", "AccessLogOptions", "PrometheusOptions", "StaticConfig", "parse_flags",
           "static_from_flags", "with_http2", "MAX_INT"]

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
    native_lb_by_default: bool = False  # services use the ClusterIP unless they say nativeLB: false
    disable_cluster_scope_resources: bool = False
    disable_ingress_class_lookup: bool = False
    cross_provider_namespaces: tuple[str, ...] | None = None  # None: any namespace may refer to other providers
    throttle_duration: float = 0.0  # seconds between configuration rebuilds (throttleDuration)


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """``--providers.kubernetesgateway.*`` (Traefik's kubernetesGateway provider, ``providers/gateway.py``).

    ``entry_points`` are (name, address, has HTTP TLS) in flag order: a listener's port picks its entry
    point (Traefik matches the address by its ":port" suffix). ``crd_namespaces`` is None while the
    kubernetesCRD provider is off (ExtensionRef filters to Traefik Middlewares need it), else its
    namespaces (empty: all)."""

    namespaces: tuple[str, ...] = ()
    label_selector: str = ""  # selects GatewayClasses
    experimental_channel: bool = False
    native_lb_by_default: bool = False
    throttle_duration: float = 0.0
    status_ip: str = ""
    status_hostname: str = ""
    status_service: str = ""  # "ns/name": copy its load-balancer addresses into Gateway status
    status_address_set: bool = False  # a statusAddress section was given (empty is an error, as in Traefik)
    entry_points: tuple[tuple[str, str, bool], ...] = ()  # (name, address, has HTTP TLS)
    crd_namespaces: tuple[str, ...] | None = None


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
    protocol: str = "tcp"  # "tcp" or "udp", from the address suffix
    proxy_protocol: bool = False  # a proxyProtocol section is configured
    proxy_protocol_insecure: bool = False
    proxy_protocol_trusted_ips: tuple[str, ...] = ()
    read_timeout: float = 60.0  # seconds; 0 = none
    write_timeout: float = 0.0
    idle_timeout: float = 180.0
    udp_timeout: float = 3.0
    h2_max_streams: int = 250  # http2.maxConcurrentStreams
    h2_decoder_table: int = 4096  # http2.maxDecoderHeaderTableSize
    h2_encoder_table: int = 4096  # http2.maxEncoderHeaderTableSize
    grace_timeout: float = 10.0  # transport.lifeCycle.graceTimeOut, seconds

    @property
    def host(self) -> str:
        host = self.address.split("/", 1)[0].rsplit(":", 1)[0]
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
    gateway: GatewayOptions | None = None
    log_level: str = "ERROR"
    kubeconfig: str = ""
    workers: int = 0
    default_rule_syntax: str = "v3"
    tcp_transport: TCPServersTransport = DEFAULT_TCP_TRANSPORT  # --tcpServersTransport.*
    access_log: AccessLogOptions | None = None  # None: access logs off
    servers_transport: ServersTransport = field(default_factory=ServersTransport)  # default@internal
    udp_relay: str = "auto"  # --udpRelay: auto | kernel | userspace (proxy/udp_kernel.py)
    raw: Mapping[str, str] = field(default_factory=dict)  # every flag, keys lower-cased


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


def _provider(flags: dict[str, str], prefix: str, syntax: str) -> ProviderOptions | None:
    if not switched_on(flags, prefix):
        return None

    def get(name: str) -> str | None:
        return flags.get(f"{prefix}.{name}")

    ns = tuple(n for n in (get("namespaces") or "").split(",") if n)
    cross = get("crossprovidernamespaces")
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
    )


def _gateway(flags: dict[str, str], entrypoints: Mapping[str, EntryPoint],
             crd: ProviderOptions | None) -> GatewayOptions | None:
    prefix = "providers.kubernetesgateway"
    if not switched_on(flags, prefix):
        return None

    def get(name: str) -> str:
        return flags.get(f"{prefix}.{name}") or ""

    status = f"{prefix}.statusaddress"
    return GatewayOptions(
        namespaces=tuple(n for n in get("namespaces").split(",") if n),
        label_selector=get("labelselector"),
        experimental_channel=_bool(flags.get(f"{prefix}.experimentalchannel")),
        native_lb_by_default=_bool(flags.get(f"{prefix}.nativelbbydefault")),
        throttle_duration=duration_seconds(get("throttleduration") or None, 0.0, f"{prefix}.throttleDuration"),
        status_ip=get("statusaddress.ip"), status_hostname=get("statusaddress.hostname"),
        status_service=(f"{get('statusaddress.service.namespace')}/{get('statusaddress.service.name')}"
                        if get("statusaddress.service.name") and get("statusaddress.service.namespace") else ""),
        status_address_set=any(k == status or k.startswith(status + ".") for k in flags),
        # the address without its protocol part (Traefik's EntryPoint.GetAddress); UDP ones serve no listener
        entry_points=tuple((ep.name, ep.address.split("/", 1)[0], ep.tls) for ep in entrypoints.values()
                           if ep.protocol != "udp"),
        crd_namespaces=None if crd is None else crd.namespaces)


def _non_negative(f: Mapping[str, str], key: str, default: int, where: str, what: str) -> int:
    text = f.get(key)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"traefik: {where}: invalid integer {text!r}") from None
    if value < 0:
        raise ConfigError(f"traefik: {where}: {what} value must be greater than or equal to zero")
    return value


def with_http2(ep: EntryPoint, f: Mapping[str, str]) -> EntryPoint:
    """The entry point's HTTP/2 settings and graceful-stop time from its flags."""
    where = f"entrypoint {ep.name}"
    streams = _non_negative(f, "http2.maxconcurrentstreams", 250, f"{where}: http2.maxConcurrentStreams",
                            "max concurrent streams")
    return replace(
        ep, h2_max_streams=streams or 250,
        h2_decoder_table=_non_negative(f, "http2.maxdecoderheadertablesize", 4096,
                                       f"{where}: http2.maxDecoderHeaderTableSize", "max decoder header table size"),
        h2_encoder_table=_non_negative(f, "http2.maxencoderheadertablesize", 4096,
                                       f"{where}: http2.maxEncoderHeaderTableSize", "max encoder header table size"),
        grace_timeout=duration_seconds(f.get("transport.lifecycle.gracetimeout"), 10.0,
                                       f"{where}: transport.lifeCycle.graceTimeOut"))


def _protocol(name: str, address: str) -> str:
    proto = address.split("/", 1)[1].lower() if "/" in address else "tcp"
    if proto not in ("tcp", "udp"):
        raise ConfigError(f"traefik: entrypoint {name}: invalid protocol: {address.split('/', 1)[1]}")
    return proto


def with_transport(ep: EntryPoint, f: Mapping[str, str]) -> EntryPoint:
    """The entry point with its TCP/UDP side from its flags: protocol, PROXY protocol, responding and UDP
    timeouts."""
    name = ep.name
    where = f"entrypoint {name}"
    pp_keys = [k for k in f if k == "proxyprotocol" or k.startswith("proxyprotocol.")]
    pp_on = bool(pp_keys) and _bool(f.get("proxyprotocol"), True)
    trusted = tuple(x.strip() for x in f.get("proxyprotocol.trustedips", "").split(",") if x.strip())
    for ip in trusted:
        _check_cidr(ip, f"{where}: proxyProtocol.trustedIPs")
    timeouts = "transport.respondingtimeouts."
    return replace(
        ep, protocol=_protocol(name, ep.address), proxy_protocol=pp_on,
        proxy_protocol_insecure=pp_on and _bool(f.get("proxyprotocol.insecure")),
        proxy_protocol_trusted_ips=trusted if pp_on else (),
        read_timeout=duration_seconds(f.get(timeouts + "readtimeout"), 60.0, f"{where}: readTimeout"),
        write_timeout=duration_seconds(f.get(timeouts + "writetimeout"), 0.0, f"{where}: writeTimeout"),
        idle_timeout=duration_seconds(f.get(timeouts + "idletimeout"), 180.0, f"{where}: idleTimeout"),
        udp_timeout=duration_seconds(f.get("udp.timeout"), 3.0, f"{where}: udp.timeout"))


def _check_cidr(value: str, where: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ConfigError(f"traefik: {where}: invalid IP or CIDR {value!r}") from None


def _tcp_transport(flags: Mapping[str, str]) -> TCPServersTransport:
    """``--tcpServersTransport.*``: the transport of TCP services that name none (root CAs are files)."""
    prefix = "tcpserverstransport."

    def get(name: str) -> str | None:
        return flags.get(prefix + name)

    tls = None
    if any(k.startswith(prefix + "tls") for k in flags):
        cas: list[str] = []
        for path in (p.strip() for p in (get("tls.rootcas") or "").split(",") if p.strip()):
            try:
                with open(path, encoding="utf-8") as fh:
                    cas.append(fh.read())
            except OSError as err:
                raise ConfigError(f"traefik: tcpServersTransport.tls.rootCAs: {path}: {err}") from None
        tls = TLSClientConfig(insecure_skip_verify=_bool(get("tls.insecureskipverify")), root_cas=tuple(cas))
    return TCPServersTransport(
        dial_timeout=duration_seconds(get("dialtimeout"), 30.0, "tcpServersTransport.dialTimeout"),
        dial_keep_alive=duration_seconds(get("dialkeepalive"), 15.0, "tcpServersTransport.dialKeepAlive"),
        termination_delay=duration_seconds(get("terminationdelay"), 0.1, "tcpServersTransport.terminationDelay"),
        tls=tls)


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
        entrypoints[name] = with_transport(EntryPoint(
            name=name, address=f["address"], tls=_bool(f.get("http.tls")) or bool(f.get("http.tls.options")),
            tls_options=f.get("http.tls.options", ""), redirect_to=to,
            redirect_scheme=f.get("http.redirections.entrypoint.scheme", "https"),
            redirect_permanent=_bool(f.get("http.redirections.entrypoint.permanent"), True),
            redirect_priority=int(f.get("http.redirections.entrypoint.priority", MAX_INT - 1)),
            forwarded_insecure=_bool(f.get("forwardedheaders.insecure")),
            trusted_ips=tuple(x for x in f.get("forwardedheaders.trustedips", "").split(",") if x),
            as_default=_bool(f.get("asdefault"))), f)
        entrypoints[name] = with_http2(entrypoints[name], f)
    api = any(k == "api" or k.startswith("api.") for k in flags) and _bool(flags.get("api"), True)
    ping = "ping" in flags or any(k.startswith("ping.") for k in flags)
    prom = any(k.startswith("metrics.prometheus") for k in flags) and _bool(flags.get("metrics.prometheus"), True)
    insecure = _bool(flags.get("api.insecure"))
    if (insecure or ping or prom) and "traefik" not in entrypoints:
        entrypoints["traefik"] = EntryPoint(name="traefik", address=":8080")
    if not entrypoints:
        entrypoints["http"] = EntryPoint(name="http", address=":80")
    syntax = flags.get("core.defaultrulesyntax", "v3")
    for target in (flags.get("ping.entrypoint"), flags.get("metrics.prometheus.entrypoint")):
        if target and target not in entrypoints:
            raise ConfigError(f"traefik: entrypoint {target!r} does not exist")
    crd = _provider(flags, "providers.kubernetescrd", syntax)
    return StaticConfig(
        entrypoints=entrypoints, api=api or insecure, api_dashboard=_bool(flags.get("api.dashboard"), True),
        api_insecure=insecure, ping=ping and _bool(flags.get("ping"), True),
        ping_entrypoint=flags.get("ping.entrypoint", "traefik"), prometheus=prom,
        prometheus_entrypoint=flags.get("metrics.prometheus.entrypoint", "traefik"),
        crd=crd, gateway=_gateway(flags, entrypoints, crd),
        ingress=_provider(flags, "providers.kubernetesingress", syntax),
        log_level=flags.get("log.level", "ERROR").upper(), kubeconfig=flags.get("kubeconfig", ""),
        workers=int(flags.get("workers", "0") or 0), default_rule_syntax=syntax, access_log=access_log_options(flags),
        servers_transport=default_servers_transport(flags), prometheus_options=prometheus_options(flags),
        tcp_transport=_tcp_transport(flags), udp_relay=_udp_relay(flags), raw=flags)


UDP_RELAYS = ("auto", "kernel", "userspace")


def _udp_relay(flags: dict[str, str]) -> str:
    """``--udpRelay`` (a pyk3s addition): how UDP routers relay datagrams (see ``proxy/udp_kernel.py``)."""
    value = flags.get("udprelay", "auto").lower()
    if value not in UDP_RELAYS:
        raise ConfigError(f"traefik: udpRelay: {value!r} is not one of {', '.join(UDP_RELAYS)}")
    return value
