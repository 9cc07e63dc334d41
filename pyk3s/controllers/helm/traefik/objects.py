"""The Traefik chart's other objects, pure: ServiceAccount, RBAC, IngressClass, IngressRoutes, TLS options.

Two deliberate additions to the chart's ClusterRole/Role: the ``traefik.containo.us`` API group is
granted next to ``traefik.io``, because pyk3s's ingress still serves the Traefik v2 group (the K3s
guide's dashboard listing uses it); and ``events`` may be created, because the ingress reports the
arguments it does not honour as Warning events on its own pod.
"""

from __future__ import annotations

from typing import Any

from ..chart import RenderError
from .context import Ctx, truthy

__all__ = ["cluster_rbac", "extra_objects", "ingress_class", "ingress_routes", "namespaced_rbac",
           "service_account", "tls_options", "tls_stores"]

CRD_GROUPS = ["traefik.io", "traefik.containo.us"]
CRD_RESOURCES = ["ingressroutes", "ingressroutetcps", "ingressrouteudps", "middlewares", "middlewaretcps",
                 "serverstransports", "serverstransporttcps", "tlsoptions", "tlsstores", "traefikservices"]
READ = ["get", "list", "watch"]
GATEWAY_GROUP = "gateway.networking.k8s.io"
EVENTS_RULE = {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}


def service_account(ctx: Ctx) -> dict[str, Any] | None:
    if truthy(ctx.v("serviceAccount", "name")):
        return None
    meta: dict[str, Any] = {"name": ctx.service_account_name, "namespace": ctx.namespace, "labels": ctx.labels()}
    if truthy(ctx.v("serviceAccountAnnotations")):
        meta["annotations"] = ctx.v("serviceAccountAnnotations")
    return {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": meta, "automountServiceAccountToken": False}


def _rule(groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": groups, "resources": resources}
    if names:
        rule["resourceNames"] = names
    rule["verbs"] = verbs
    return rule


def _cluster_rules(ctx: Ctx) -> list[dict[str, Any]]:
    crd = bool(ctx.v("providers", "kubernetesCRD", "enabled"))
    ingress = bool(ctx.v("providers", "kubernetesIngress", "enabled"))
    rules: list[dict[str, Any]] = []
    if not ctx.version_at_least("v3.1.0-0"):
        rules.append(_rule([""], ["endpoints", "services"], READ))
    else:
        core = (["configmaps"] if crd else []) + ["nodes", "services"]
        rules.append(_rule([""], core, READ))
        rules.append(_rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]))
    if ctx.version_at_least("v3.5.0-0"):
        rules.append(_rule([""], ["pods"], ["get"]))
    rules.append(_rule([""], ["secrets"], READ, list(ctx.v("rbac", "secretResourceNames") or [])))
    if ingress:
        rules.append(_rule(["extensions", "networking.k8s.io"], ["ingressclasses", "ingresses"], READ))
        rules.append(_rule(["extensions", "networking.k8s.io"], ["ingresses/status"], ["update"]))
    if crd:
        if not ingress:
            rules.append(_rule(["extensions", "networking.k8s.io"], ["ingressclasses"], READ))
        rules.append(_rule(list(CRD_GROUPS), list(CRD_RESOURCES), READ))
    if ctx.v("providers", "kubernetesGateway", "enabled"):
        rules += _gateway_rules(ctx)
    rules.append(dict(EVENTS_RULE))
    return rules


def _gateway_rules(ctx: Ctx) -> list[dict[str, Any]]:
    """What the chart's ClusterRole grants the kubernetesGateway provider (none in its namespaced Role)."""
    v32 = ctx.version_at_least("v3.2.0-0")
    core = ["namespaces", *([] if ctx.version_at_least("v3.1.0-0") else ["endpoints"]), "secrets",
            *(["configmaps"] if v32 else [])]
    kinds = [*(["backendtlspolicies"] if v32 else []), "gatewayclasses", "gateways", *(["grpcroutes"] if v32 else []),
             "httproutes", "referencegrants", "tcproutes", "tlsroutes"]
    statuses = [*(["backendtlspolicies/status"] if v32 else []), "gatewayclasses/status", "gateways/status",
                *(["grpcroutes/status"] if v32 else []), "httproutes/status", "tcproutes/status", "tlsroutes/status"]
    return [_rule([""], core, READ), _rule([GATEWAY_GROUP], kinds, READ), _rule([GATEWAY_GROUP], statuses, ["update"])]


def cluster_rbac(ctx: Ctx) -> list[dict[str, Any]]:
    if not ctx.v("rbac", "enabled") or ctx.v("rbac", "namespaced"):
        return []
    labels = ctx.labels()
    for target in ctx.v("rbac", "aggregateTo") or []:
        labels[f"rbac.authorization.k8s.io/aggregate-to-{target}"] = "true"
    role = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": ctx.cluster_role_name, "labels": labels}, "rules": _cluster_rules(ctx)}
    binding = {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
               "metadata": {"name": ctx.cluster_role_name, "labels": ctx.labels()},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": ctx.cluster_role_name},
               "subjects": [{"kind": "ServiceAccount", "name": ctx.service_account_name,
                             "namespace": ctx.namespace}]}
    return [role, binding]


def namespaced_rbac(ctx: Ctx) -> list[dict[str, Any]]:
    """A Role and RoleBinding per watched namespace when ``rbac.namespaced`` is set."""
    if not ctx.v("rbac", "enabled") or not ctx.v("rbac", "namespaced"):
        return []
    ingress_ns = [ctx.namespace, *(ctx.v("providers", "kubernetesIngress", "namespaces") or [])]
    crd_ns = [ctx.namespace, *(ctx.v("providers", "kubernetesCRD", "namespaces") or [])]
    every = sorted(set(ingress_ns) | set(crd_ns))
    crd = bool(ctx.v("providers", "kubernetesCRD", "enabled"))
    ingress = bool(ctx.v("providers", "kubernetesIngress", "enabled"))
    names = list(ctx.v("rbac", "secretResourceNames") or [])
    out: list[dict[str, Any]] = []
    for ns in every:
        rules: list[dict[str, Any]] = []
        if not ctx.version_at_least("v3.1.0-0"):
            rules.append(_rule([""], ["endpoints", "services"], READ))
        else:
            core = (["configmaps"] if crd and ctx.version_at_least("v3.4.0-0") else []) + ["services"]
            rules.append(_rule([""], core, READ))
            rules.append(_rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]))
        if ctx.version_at_least("v3.5.0-0"):
            rules.append(_rule([""], ["pods"], ["get"]))
        rules.append(_rule([""], ["secrets"], ["list"]))
        rules.append(_rule([""], ["secrets"], READ, names))
        if ns in ingress_ns and ingress:
            rules.append(_rule(["extensions", "networking.k8s.io"], ["ingresses"], READ))
            rules.append(_rule(["extensions", "networking.k8s.io"], ["ingresses/status"], ["update"]))
        if ns in crd_ns and crd:
            rules.append(_rule(list(CRD_GROUPS), list(CRD_RESOURCES), READ))
        if ns == ctx.namespace:
            rules.append(dict(EVENTS_RULE))
        out.append({"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1",
                    "metadata": {"name": ctx.fullname, "namespace": ns, "labels": ctx.labels()}, "rules": rules})
    for ns in every:
        out.append({"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
                    "metadata": {"name": ctx.fullname, "namespace": ns, "labels": ctx.labels()},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ctx.fullname},
                    "subjects": [{"kind": "ServiceAccount", "name": ctx.service_account_name,
                                  "namespace": ctx.namespace}]})
    return out


def ingress_class(ctx: Ctx) -> dict[str, Any] | None:
    if not ctx.v("ingressClass", "enabled"):
        return None
    default = ctx.v("ingressClass", "isDefaultClass")
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"annotations": {"ingressclass.kubernetes.io/is-default-class":
                                         "true" if default is True else "false" if default in (False, None) else str(default)},
                         "labels": ctx.labels(), "name": ctx.v("ingressClass", "name") or ctx.fullname},
            "spec": {"controller": "traefik.io/ingress-controller"}}


def ingress_routes(ctx: Ctx) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, cfg in sorted((ctx.v("ingressRoute") or {}).items()):
        if not isinstance(cfg, dict) or not cfg.get("enabled"):
            continue
        annotations: dict[str, Any] = dict(cfg.get("annotations") or {})
        crd_class = ctx.v("providers", "kubernetesCRD", "ingressClass")
        if ctx.v("ingressClass", "enabled") and ctx.v("providers", "kubernetesCRD", "enabled") and truthy(crd_class):
            annotations["kubernetes.io/ingress.class"] = crd_class
        meta: dict[str, Any] = {"name": f"{ctx.release.name}-{name}", "namespace": ctx.namespace}
        if annotations:
            meta["annotations"] = annotations
        meta["labels"] = ctx.labels(cfg.get("labels"))
        route: dict[str, Any] = {"match": cfg.get("matchRule"), "kind": "Rule"}
        if truthy(cfg.get("services")):
            route["services"] = cfg["services"]
        if truthy(cfg.get("middlewares")):
            route["middlewares"] = cfg["middlewares"]
        spec: dict[str, Any] = {"entryPoints": list(cfg.get("entryPoints") or []), "routes": [route]}
        if truthy(cfg.get("tls")):
            spec["tls"] = cfg["tls"]
        out.append({"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute", "metadata": meta, "spec": spec})
    return out


def tls_options(ctx: Ctx) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, cfg in sorted((ctx.v("tlsOptions") or {}).items()):
        cfg = cfg or {}
        spec: dict[str, Any] = {}
        for field in ("alpnProtocols", "cipherSuites", "clientAuth", "curvePreferences"):
            if truthy(cfg.get(field)):
                spec[field] = cfg[field]
        if truthy(cfg.get("disableSessionTickets")):
            if not ctx.version_at_least("v3.4.0-0"):
                raise RenderError(f"tlsOptions.{name}.disableSessionTickets",
                                  "ERROR: disableSessionTickets is a feature only available for traefik >= v3.4.0.")
            spec["disableSessionTickets"] = cfg["disableSessionTickets"]
        for field in ("maxVersion", "minVersion", "sniStrict"):
            if truthy(cfg.get(field)):
                spec[field] = cfg[field]
        out.append({"apiVersion": "traefik.io/v1alpha1", "kind": "TLSOption",
                    "metadata": {"name": name, "namespace": ctx.namespace, "labels": ctx.labels(cfg.get("labels"))},
                    "spec": spec})
    return out


def tls_stores(ctx: Ctx) -> list[dict[str, Any]]:
    return [{"apiVersion": "traefik.io/v1alpha1", "kind": "TLSStore",
             "metadata": {"name": name, "namespace": ctx.namespace, "labels": ctx.labels()}, "spec": cfg or {}}
            for name, cfg in sorted((ctx.v("tlsStore") or {}).items())]


def extra_objects(ctx: Ctx) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, obj in enumerate(ctx.v("extraObjects") or []):
        key = f"extraObjects[{i}]"
        if isinstance(obj, str):
            import yaml

            try:
                obj = yaml.safe_load(ctx.tpl(obj, key))
            except yaml.YAMLError as err:
                raise RenderError(key, f"not a YAML object after templating: {err}") from None
        obj = ctx.tpl(obj, key)
        if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind") or \
                not (obj.get("metadata") or {}).get("name"):
            raise RenderError(key, "must be a Kubernetes object with apiVersion, kind and metadata.name")
        out.append(obj)
    return out
