"""The Traefik container's arguments, in the chart's order (``_podtemplate.tpl``'s ``args:``), pure.

Each argument comes with the value key that produced it, so an argument the ingress does not honour
can be reported against the key a user set (``logs.access.enabled`` for ``--accesslog=true``).
Entry points are listed by name in sorted order, as a Go template ranges over a map. The chart's
``fail`` checks on these values become :class:`RenderError` with the chart's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..chart import RenderError
from .args_telemetry import metrics_args, tracing_args, yaml_to_args
from .context import Ctx, go_string, truthy

__all__ = ["Arg", "container_args"]


@dataclass(frozen=True, slots=True)
class Arg:
    text: str
    key: str


class _Args:
    def __init__(self) -> None:
        self.items: list[Arg] = []

    def add(self, text: str, key: str) -> None:
        self.items.append(Arg(text, key))


def _not_nil(value: Any) -> bool:
    return value is not None


def _ports(ctx: Ctx) -> list[tuple[str, Mapping[str, Any]]]:
    ports = ctx.v("ports") or {}
    return [(name, cfg) for name, cfg in sorted(ports.items()) if truthy(cfg)]


def _experimental(a: _Args, ctx: Ctx) -> None:
    fast = ctx.v("experimental", "fastProxy") or {}
    if fast.get("enabled"):
        a.add("--experimental.fastProxy", "experimental.fastProxy.enabled")
    if fast.get("debug"):
        a.add("--experimental.fastProxy.debug", "experimental.fastProxy.debug")
    for name, plugin in sorted((ctx.v("experimental", "plugins") or {}).items()):
        key = f"experimental.plugins.{name}"
        if not isinstance(plugin, dict) or "moduleName" not in plugin or "version" not in plugin:
            raise RenderError(key, f"ERROR: plugin {name} is missing moduleName/version keys !")
        a.add(f"--experimental.plugins.{name}.moduleName={go_string(plugin['moduleName'])}", key)
        a.add(f"--experimental.plugins.{name}.version={go_string(plugin['version'])}", key)
        if (plugin.get("settings") or {}).get("useUnsafe"):
            a.add(f"--experimental.plugins.{name}.settings.useUnsafe=true", key)
    for name, plugin in sorted((ctx.v("experimental", "localPlugins") or {}).items()):
        key = f"experimental.localPlugins.{name}"
        if not isinstance(plugin, dict) or "moduleName" not in plugin:
            raise RenderError(key, f"ERROR: local plugin {name} is missing moduleName !")
        a.add(f"--experimental.localPlugins.{name}.moduleName={go_string(plugin['moduleName'])}", key)
        if (plugin.get("settings") or {}).get("useUnsafe"):
            a.add(f"--experimental.localPlugins.{name}.settings.useUnsafe=true", key)
    abort = ctx.v("experimental", "abortOnPluginFailure")
    if truthy(abort) and ctx.version_at_least("v3.3.0-0"):
        a.add(f"--experimental.abortonpluginfailure={go_string(abort)}", "experimental.abortOnPluginFailure")


def _namespaces(ctx: Ctx, provider: str) -> str:
    return ",".join(ctx.v("providers", provider, "namespaces") or []) or ctx.namespace


def _providers(a: _Args, ctx: Ctx) -> None:
    namespaced = bool(ctx.v("rbac", "namespaced"))
    rbac_namespaced = bool(ctx.v("rbac", "enabled")) and namespaced
    crd = ctx.v("providers", "kubernetesCRD") or {}
    ing = ctx.v("providers", "kubernetesIngress") or {}
    k = "providers.kubernetesCRD"
    if crd.get("enabled"):
        a.add("--providers.kubernetescrd", f"{k}.enabled")
        for field, flag in (("labelSelector", "labelSelector"), ("ingressClass", "ingressClass")):
            if truthy(crd.get(field)):
                a.add(f"--providers.kubernetescrd.{flag}={go_string(crd[field])}", f"{k}.{field}")
        for field in ("allowCrossNamespace", "allowExternalNameServices"):
            if truthy(crd.get(field)):
                a.add(f"--providers.kubernetescrd.{field}=true", f"{k}.{field}")
        if crd.get("allowEmptyServices") is not None:
            a.add(f"--providers.kubernetescrd.allowEmptyServices={go_string(crd['allowEmptyServices'])}",
                  f"{k}.allowEmptyServices")
        if namespaced and ctx.version_at_least("v3.1.2-0"):
            a.add("--providers.kubernetescrd.disableClusterScopeResources=true", "rbac.namespaced")
        if truthy(crd.get("nativeLBByDefault")):
            a.add("--providers.kubernetescrd.nativeLBByDefault=true", f"{k}.nativeLBByDefault")
    k = "providers.kubernetesIngress"
    if ing.get("enabled"):
        a.add("--providers.kubernetesingress", f"{k}.enabled")
        if truthy(ing.get("allowExternalNameServices")):
            a.add("--providers.kubernetesingress.allowExternalNameServices=true", f"{k}.allowExternalNameServices")
        if ing.get("allowEmptyServices") is not None:
            a.add(f"--providers.kubernetesingress.allowEmptyServices={go_string(ing['allowEmptyServices'])}",
                  f"{k}.allowEmptyServices")
        published = ing.get("publishedService") or {}
        if ctx.v("service", "enabled") and published.get("enabled"):
            path = str(published.get("pathOverride") or f"{ctx.namespace}/{ctx.fullname}").rstrip("-")
            a.add(f"--providers.kubernetesingress.ingressendpoint.publishedservice={path}",
                  f"{k}.publishedService")
        for field in ("labelSelector", "ingressClass"):
            if truthy(ing.get(field)):
                a.add(f"--providers.kubernetesingress.{field}={go_string(ing[field])}", f"{k}.{field}")
        if namespaced:
            if not ctx.version_at_least("v3.1.5-0"):
                a.add("--providers.kubernetesingress.disableIngressClassLookup=true", "rbac.namespaced")
                if ctx.version_at_least("v3.1.2-0"):
                    a.add("--providers.kubernetesingress.disableClusterScopeResources=true", "rbac.namespaced")
            else:
                a.add("--providers.kubernetesingress.disableClusterScopeResources=true", "rbac.namespaced")
        for field in ("nativeLBByDefault", "strictPrefixMatching"):
            if truthy(ing.get(field)):
                a.add(f"--providers.kubernetesingress.{field}=true", f"{k}.{field}")
    if ctx.v("experimental", "kubernetesGateway", "enabled"):
        a.add("--experimental.kubernetesgateway", "experimental.kubernetesGateway.enabled")
    if crd.get("enabled") and (truthy(crd.get("namespaces")) or rbac_namespaced):
        a.add(f"--providers.kubernetescrd.namespaces={_namespaces(ctx, 'kubernetesCRD')}",
              "providers.kubernetesCRD.namespaces")
    gw = ctx.v("providers", "kubernetesGateway") or {}
    k = "providers.kubernetesGateway"
    if truthy(gw) and gw.get("enabled"):
        a.add("--providers.kubernetesgateway", f"{k}.enabled")
        status = gw.get("statusAddress") or {}
        if truthy(status):
            for field in ("ip", "hostname"):
                if truthy(status.get(field)):
                    a.add(f"--providers.kubernetesgateway.statusaddress.{field}={go_string(status[field])}",
                          f"{k}.statusAddress.{field}")
            svc = status.get("service") or {}
            if svc.get("enabled") and ctx.v("service", "enabled"):
                a.add(f"--providers.kubernetesgateway.statusaddress.service.name={svc.get('name') or ctx.fullname}",
                      f"{k}.statusAddress.service")
                a.add("--providers.kubernetesgateway.statusaddress.service.namespace="
                      f"{svc.get('namespace') or ctx.namespace}", f"{k}.statusAddress.service")
        if truthy(gw.get("nativeLBByDefault")):
            a.add("--providers.kubernetesgateway.nativeLBByDefault=true", f"{k}.nativeLBByDefault")
        if truthy(gw.get("namespaces")) or rbac_namespaced:
            a.add(f"--providers.kubernetesgateway.namespaces={_namespaces(ctx, 'kubernetesGateway')}",
                  f"{k}.namespaces")
        if truthy(gw.get("experimentalChannel")):
            a.add("--providers.kubernetesgateway.experimentalchannel=true", f"{k}.experimentalChannel")
        if truthy(gw.get("labelselector")):
            a.add(f"--providers.kubernetesgateway.labelselector={go_string(gw['labelselector'])}",
                  f"{k}.labelselector")
    if ing.get("enabled") and (truthy(ing.get("namespaces")) or rbac_namespaced):
        a.add(f"--providers.kubernetesingress.namespaces={_namespaces(ctx, 'kubernetesIngress')}",
              "providers.kubernetesIngress.namespaces")
    file = ctx.v("providers", "file") or {}
    if file.get("enabled"):
        a.add("--providers.file.directory=/etc/traefik/dynamic", "providers.file.enabled")
        if file.get("watch"):
            a.add("--providers.file.watch=true", "providers.file.watch")


def _entrypoint_options(a: _Args, ctx: Ctx) -> None:
    ports = ctx.v("ports") or {}
    for name, cfg in _ports(ctx):
        k = f"ports.{name}"
        if truthy(cfg.get("redirectTo")):
            raise RenderError(f"{k}.redirectTo", "ERROR: redirectTo syntax has been removed in v34 of this Chart. "
                                                 "See Release notes or EXAMPLES.md for new syntax.")
        redirect = (cfg.get("redirections") or {}).get("entryPoint") if truthy(cfg.get("redirections")) else None
        if truthy(redirect):
            rk = f"{k}.redirections.entryPoint"
            to = redirect.get("to")
            if to not in ports:
                raise RenderError(f"{rk}.to", f"ERROR: Cannot redirect {name} to {go_string(to)}: entryPoint not found")
            target = ports.get(to) or {}
            scheme = redirect.get("scheme")
            if (target.get("tls") or {}).get("enabled") and truthy(scheme) and scheme != "https":
                raise RenderError(f"{rk}.scheme",
                                  f"ERROR: Cannot redirect {name} to {to} without setting scheme to https")
            a.add(f"--entryPoints.{name}.http.redirections.entryPoint.to=:{go_string(target.get('exposedPort'))}",
                  f"{rk}.to")
            if truthy(scheme):
                a.add(f"--entryPoints.{name}.http.redirections.entryPoint.scheme={go_string(scheme)}", f"{rk}.scheme")
            if truthy(redirect.get("priority")):
                a.add(f"--entryPoints.{name}.http.redirections.entryPoint.priority={go_string(redirect['priority'])}",
                      f"{rk}.priority")
            if "permanent" in redirect:
                a.add(f"--entryPoints.{name}.http.redirections.entryPoint.permanent="
                      f"{go_string(redirect['permanent']) if redirect['permanent'] is not None else ''}",
                      f"{rk}.permanent")
        if truthy(cfg.get("middlewares")):
            a.add(f"--entryPoints.{name}.http.middlewares=" + ",".join(go_string(m) for m in cfg["middlewares"]),
                  f"{k}.middlewares")
        tls = cfg.get("tls")
        if truthy(tls) and tls.get("enabled"):
            a.add(f"--entryPoints.{name}.http.tls=true", f"{k}.tls.enabled")
            if truthy(tls.get("options")):
                a.add(f"--entryPoints.{name}.http.tls.options={go_string(tls['options'])}", f"{k}.tls.options")
            if truthy(tls.get("certResolver")):
                a.add(f"--entryPoints.{name}.http.tls.certResolver={go_string(tls['certResolver'])}",
                      f"{k}.tls.certResolver")
            for i, domain in enumerate(tls.get("domains") or []):
                domain = domain or {}
                if truthy(domain.get("main")):
                    a.add(f"--entryPoints.{name}.http.tls.domains[{i}].main={go_string(domain['main'])}",
                          f"{k}.tls.domains[{i}].main")
                if truthy(domain.get("sans")):
                    a.add(f"--entryPoints.{name}.http.tls.domains[{i}].sans=" +
                          ",".join(go_string(s) for s in domain["sans"]), f"{k}.tls.domains[{i}].sans")
            http3 = cfg.get("http3")
            if truthy(http3) and http3.get("enabled"):
                a.add(f"--entryPoints.{name}.http3", f"{k}.http3.enabled")
                if truthy(http3.get("advertisedPort")):
                    a.add(f"--entryPoints.{name}.http3.advertisedPort={go_string(http3['advertisedPort'])}",
                          f"{k}.http3.advertisedPort")
        if truthy(cfg.get("allowACMEByPass")):
            if not ctx.version_at_least("v3.1.3-0"):
                raise RenderError(f"{k}.allowACMEByPass", "ERROR: allowACMEByPass has been introduced with Traefik v3.1.3+")
            a.add(f"--entryPoints.{name}.allowACMEByPass=true", f"{k}.allowACMEByPass")
        for section, flag in (("forwardedHeaders", "forwardedHeaders"), ("proxyProtocol", "proxyProtocol")):
            sub = cfg.get(section)
            if not truthy(sub):
                continue
            if truthy(sub.get("trustedIPs")):
                a.add(f"--entryPoints.{name}.{flag}.trustedIPs=" + ",".join(go_string(ip) for ip in sub["trustedIPs"]),
                      f"{k}.{section}.trustedIPs")
            if truthy(sub.get("insecure")):
                a.add(f"--entryPoints.{name}.{flag}.insecure", f"{k}.{section}.insecure")
        transport = cfg.get("transport")
        if truthy(transport):
            tk = f"{k}.transport"
            for group, fields in (("respondingTimeouts", ("readTimeout", "writeTimeout", "idleTimeout")),
                                  ("lifeCycle", ("requestAcceptGraceTimeout", "graceTimeOut"))):
                sub = transport.get(group)
                if not truthy(sub):
                    continue
                for field in fields:
                    if sub.get(field) is not None and go_string(sub[field]):
                        a.add(f"--entryPoints.{name}.transport.{group}.{field}={go_string(sub[field])}",
                              f"{tk}.{group}.{field}")
            for field in ("keepAliveMaxRequests", "keepAliveMaxTime"):
                if transport.get(field) is not None and go_string(transport[field]):
                    a.add(f"--entryPoints.{name}.transport.{field}={go_string(transport[field])}", f"{tk}.{field}")


def _logs(a: _Args, ctx: Ctx) -> None:
    logs = ctx.v("logs")
    if not truthy(logs):
        return
    general = logs.get("general") or {}
    fmt = general.get("format")
    if truthy(fmt) and fmt not in ("common", "json"):
        raise RenderError("logs.general.format", "ERROR: .Values.logs.general.format must be either common or json")
    if truthy(fmt):
        a.add(f"--log.format={go_string(fmt)}", "logs.general.format")
    if truthy(general.get("filePath")):
        a.add(f"--log.filePath={go_string(general['filePath'])}", "logs.general.filePath")
    if (fmt == "common" or not truthy(fmt)) and general.get("noColor") is True:
        a.add("--log.noColor=true", "logs.general.noColor")
    if truthy(general.get("level")):
        a.add(f"--log.level={go_string(general['level']).upper()}", "logs.general.level")
    access = logs.get("access") or {}
    if not access.get("enabled"):
        return
    k = "logs.access"
    a.add("--accesslog=true", f"{k}.enabled")
    if truthy(access.get("format")):
        a.add(f"--accesslog.format={go_string(access['format'])}", f"{k}.format")
    if truthy(access.get("filePath")):
        a.add(f"--accesslog.filepath={go_string(access['filePath'])}", f"{k}.filePath")
    if truthy(access.get("addInternals")):
        a.add("--accesslog.addinternals", f"{k}.addInternals")
    if truthy(access.get("bufferingSize")):
        a.add(f"--accesslog.bufferingsize={go_string(access['bufferingSize'])}", f"{k}.bufferingSize")
    if truthy(access.get("timezone")):
        a.add("--accesslog.fields.names.StartUTC=drop", f"{k}.timezone")
    filters = access.get("filters")
    if truthy(filters):
        if truthy(filters.get("statuscodes")):
            a.add(f"--accesslog.filters.statuscodes={go_string(filters['statuscodes'])}", f"{k}.filters.statuscodes")
        if truthy(filters.get("retryattempts")):
            a.add("--accesslog.filters.retryattempts", f"{k}.filters.retryattempts")
        if truthy(filters.get("minduration")):
            a.add(f"--accesslog.filters.minduration={go_string(filters['minduration'])}", f"{k}.filters.minduration")
    fields = access.get("fields") or {}
    general_fields = fields.get("general") or {}
    header_fields = fields.get("headers") or {}
    a.add(f"--accesslog.fields.defaultmode={go_string(general_fields.get('defaultmode'))}",
          f"{k}.fields.general.defaultmode")
    for name, action in sorted((general_fields.get("names") or {}).items()):
        a.add(f"--accesslog.fields.names.{name}={go_string(action)}", f"{k}.fields.general.names.{name}")
    a.add(f"--accesslog.fields.headers.defaultmode={go_string(header_fields.get('defaultmode'))}",
          f"{k}.fields.headers.defaultmode")
    for name, action in sorted((header_fields.get("names") or {}).items()):
        a.add(f"--accesslog.fields.headers.names.{name}={go_string(action)}", f"{k}.fields.headers.names.{name}")


def container_args(ctx: Ctx) -> list[Arg]:
    a = _Args()
    glob = ctx.v("global") or {}
    if truthy(glob):
        if not glob.get("checkNewVersion"):
            a.add("--global.checkNewVersion=false", "global.checkNewVersion")
        if glob.get("sendAnonymousUsage"):
            a.add("--global.sendAnonymousUsage", "global.sendAnonymousUsage")
    for name, cfg in _ports(ctx):
        protocol = go_string(cfg.get("protocol") or "tcp").lower()
        a.add(f"--entryPoints.{name}.address={go_string(cfg.get('hostIP'))}:{go_string(cfg.get('port'))}/{protocol}",
              f"ports.{name}")
        if truthy(cfg.get("asDefault")):
            a.add(f"--entryPoints.{name}.asDefault={go_string(cfg['asDefault'])}", f"ports.{name}.asDefault")
    a.add("--api.dashboard=true", "")
    a.add("--ping=true", "")
    if truthy(ctx.v("core", "defaultRuleSyntax")):
        a.add(f"--core.defaultRuleSyntax={go_string(ctx.v('core', 'defaultRuleSyntax'))}", "core.defaultRuleSyntax")
    metrics_args(a, ctx)
    tracing_args(a, ctx)
    _experimental(a, ctx)
    _providers(a, ctx)
    _entrypoint_options(a, ctx)
    _logs(a, ctx)
    resolvers = ctx.v("certificatesResolvers")
    if truthy(resolvers):
        yaml_to_args(a, "certificatesresolvers", resolvers, "certificatesResolvers")
    for i, extra in enumerate(ctx.v("additionalArguments") or []):
        a.add(go_string(extra), f"additionalArguments[{i}]")
    return a.items
