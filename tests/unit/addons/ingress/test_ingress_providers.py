"""Providers as pure functions: YAML fixture in, whole DynamicConfig out (spec §3, §4)."""

from __future__ import annotations

import yaml

from pyk3s.addons.ingress.config.dynamic import (
    DynamicConfig,
    IngressMetadata,
    LoadBalancer,
    Middleware,
    Router,
    RouterObservability,
    RouterTLS,
    Server,
    Service,
    Weighted,
    WeightedRef,
)
from pyk3s.addons.ingress.config.static import ProviderOptions
from pyk3s.addons.ingress.providers.common import normalize
from pyk3s.addons.ingress.providers.crd import build_crd_config
from pyk3s.addons.ingress.providers.ingress import build_ingress_config, ingress_status

SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: whoami, namespace: default}
spec:
  ports: [{name: web, port: 80}, {name: https-alt, port: 8443}]
---
apiVersion: v1
kind: Service
metadata: {name: whoami2, namespace: default}
spec:
  ports: [{name: web2, port: 8000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: whoami-a, namespace: default, labels: {kubernetes.io/service-name: whoami}}
addressType: IPv4
ports: [{name: web, port: 8080}, {name: https-alt, port: 9443}]
endpoints:
- addresses: [10.42.0.1, 10.42.0.2]
  conditions: {ready: true}
- addresses: [10.42.0.2]
  conditions: {ready: true}
- addresses: [10.42.0.3]
  conditions: {ready: false, serving: false, terminating: true}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: whoami2-a, namespace: default, labels: {kubernetes.io/service-name: whoami2}}
addressType: IPv4
ports: [{name: web2, port: 8001}]
endpoints:
- addresses: [10.42.0.9]
---
"""

LB1 = LoadBalancer(servers=(Server("http://10.42.0.1:8080"), Server("http://10.42.0.2:8080")))
LB2 = LoadBalancer(servers=(Server("http://10.42.0.9:8001"),))


def load(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(SERVICES + text) if d]


def test_normalize():
    assert normalize("default-test.route-abc") == "default-test-route-abc"
    assert normalize("--a__b..c--") == "a-b-c"


def test_crd_single_service_and_names():
    cfg = build_crd_config(load("""
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: test.route, namespace: default}
spec:
  entryPoints: [foo]
  routes:
  - match: Host(`foo.com`) && PathPrefix(`/bar`)
    kind: Rule
    priority: 12
    services: [{name: whoami, port: 80}]
  - match: ""
    kind: Rule
    services: [{name: whoami, port: 80}]
  - match: Host(`x`)
    kind: Other
    services: [{name: whoami, port: 80}]
"""))
    key = "default-test-route-6b204d94623b3df4370c"
    assert cfg == DynamicConfig(
        routers={key: Router(rule="Host(`foo.com`) && PathPrefix(`/bar`)", service=key, entry_points=("foo",),
                             priority=12)},
        services={key: Service(load_balancer=LB1)})


def test_crd_weighted_traefikservice_middlewares_tls():
    cfg = build_crd_config(load("""
apiVersion: traefik.containo.us/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  tls: {secretName: nope, options: {name: opt}}
  routes:
  - match: Host(`w`)
    kind: Rule
    services: [{name: whoami, port: web, weight: 3}, {name: whoami2, port: 8000}]
    middlewares: [{name: mw}, {name: other@file}]
  - match: Host(`t`)
    services: [{name: wrr, kind: TraefikService}]
  - match: Host(`api`)
    services: [{name: api@internal, kind: TraefikService}]
  - match: Host(`x`)
    services: [{name: whoami, port: 80}]
    middlewares: [{name: mw, namespace: other}]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: mw, namespace: default}
spec:
  stripPrefix: {prefixes: [/a]}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: wrr, namespace: default}
spec:
  weighted:
    services: [{name: whoami2, port: 8000, weight: 2}]
"""))
    import hashlib

    def key(m: str) -> str:
        return "default-r-" + hashlib.sha256(m.encode()).hexdigest()[:20]

    tls = RouterTLS(options="default-opt")
    assert cfg.routers[key("Host(`w`)")] == Router(rule="Host(`w`)", service=key("Host(`w`)"),
                                                   middlewares=("default-mw", "other@file"), tls=tls)
    assert cfg.services[key("Host(`w`)")] == Service(weighted=Weighted(services=(
        WeightedRef("default-whoami-web", 3), WeightedRef("default-whoami2-8000", 1))))
    assert cfg.services["default-whoami-web"] == Service(load_balancer=LB1)
    assert cfg.routers[key("Host(`t`)")].service == "default-wrr"
    assert cfg.services["default-wrr"] == Service(weighted=Weighted(services=(WeightedRef("default-whoami2-8000", 2),)))
    assert cfg.routers[key("Host(`api`)")].service == "api@internal"
    cross = cfg.routers[key("Host(`x`)")]
    assert "invalid reference to middleware mw: allowCrossNamespace is disabled" in cross.error
    assert cfg.middlewares == {"default-mw": Middleware("stripPrefix", {"prefixes": ["/a"]})}
    allowed = build_crd_config(load("""
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
  - match: Host(`x`)
    services: [{name: whoami, port: 80}]
    middlewares: [{name: mw, namespace: other}]
"""), ProviderOptions(allow_cross_namespace=True))
    assert next(iter(allowed.routers.values())).middlewares == ("other-mw",)


def test_crd_missing_service_and_empty_endpoints():
    cfg = build_crd_config(load("""
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
  - match: Host(`a`)
    services: [{name: nothere, port: 80}]
"""))
    (router,) = cfg.routers.values()
    assert router.error == "ingressroute default/r: kubernetes service not found: default/nothere"


def test_crd_ingress_class_filter():
    docs = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default, annotations: {kubernetes.io/ingress.class: other}}
spec:
  routes: [{match: Host(`a`), services: [{name: whoami, port: 80}]}]
"""
    assert build_crd_config(load(docs)).routers == {}
    assert len(build_crd_config(load(docs), ProviderOptions(ingress_class="other")).routers) == 1


def test_ingress_rules_names_pathtypes_annotations():
    cfg = build_ingress_config(load("""
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: traefik}
spec: {controller: traefik.io/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: default
  annotations:
    traefik.ingress.kubernetes.io/router.entrypoints: web, websecure
    traefik.ingress.kubernetes.io/router.middlewares: default-auth@kubernetescrd
    Traefik.ingress.kubernetes.io/router.priority: "42"
    traefik.ingress.kubernetes.io/router.tls: "true"
spec:
  ingressClassName: traefik
  tls: [{hosts: [foo.com], secretName: missing}]
  rules:
  - host: foo.com
    http:
      paths:
      - {path: /bar, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: whoami, port: {name: web}}}}
      - {path: /impl, pathType: ImplementationSpecific, backend: {service: {name: whoami2, port: {number: 8000}}}}
  - http:
      paths:
      - {path: /nohost, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other, namespace: default}
spec:
  ingressClassName: nginx
  rules: [{host: x, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}]}}]
"""))
    base = {"entry_points": ("web", "websecure"), "middlewares": ("default-auth@kubernetescrd",), "priority": 42,
            "tls": RouterTLS()}

    def seen(service: str, port: str) -> RouterObservability:
        return RouterObservability(ingress=IngressMetadata("default", "web", service, port))

    assert cfg.routers == {
        "default-web-foo-com-bar": Router(rule='Host("foo.com") && PathPrefix("/bar")', service="default-whoami-80",
                                          observability=seen("whoami", "80"), **base),
        "default-web-foo-com-exact": Router(rule='Host("foo.com") && Path("/exact")', service="default-whoami-web",
                                            observability=seen("whoami", "web"), **base),
        "default-web-foo-com-impl": Router(rule='Host("foo.com") && PathPrefix("/impl")', service="default-whoami2-8000",
                                           observability=seen("whoami2", "8000"), **base),
        "default-web-nohost": Router(rule='PathPrefix("/nohost")', service="default-whoami-80",
                                     observability=seen("whoami", "80"), **base),
    }
    assert cfg.services == {"default-whoami-80": Service(load_balancer=LB1),
                            "default-whoami-web": Service(load_balancer=LB1),
                            "default-whoami2-8000": Service(load_balancer=LB2)}


def test_ingress_default_backend_strict_prefix_and_https_port():
    docs = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: d, namespace: default}
spec:
  defaultBackend: {service: {name: whoami, port: {number: 8443}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: s, namespace: default}
spec:
  rules:
  - http:
      paths:
      - {path: /aaa/, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}
"""
    cfg = build_ingress_config(load(docs), ProviderOptions(strict_prefix_matching=True))
    assert cfg.routers["default-router"] == Router(
        rule='PathPrefix("/")', service="default-backend", priority=-2147483648, rule_syntax="default",
        observability=RouterObservability(ingress=IngressMetadata("default", "d", "whoami", "8443")))
    assert cfg.services["default-backend"].load_balancer.servers == (Server("https://10.42.0.1:9443"), Server("https://10.42.0.2:9443"))
    assert cfg.routers["default-s-aaa"].rule == '(Path("/aaa") || PathPrefix("/aaa/"))'


def test_ingress_status_from_published_service():
    lb = {"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "172.31.0.2"}]}}}
    assert ingress_status(lb) == [{"ip": "172.31.0.2"}]
    assert ingress_status({"spec": {"type": "LoadBalancer"}, "status": {}}) == []
    assert ingress_status({"spec": {"type": "ExternalName", "externalName": "x.example"}}) == [{"hostname": "x.example"}]


def test_build_config_runs_the_providers_that_are_switched_on():
    from pyk3s.addons.ingress.config.static import static_from_flags
    from pyk3s.addons.ingress.providers import PROVIDERS, build_config, watched_kinds

    docs = load("""
apiVersion: v1
kind: Service
metadata: {name: whoami, namespace: default}
spec: {ports: [{name: web, port: 80}]}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes: [{match: Host(`a`), kind: Rule, services: [{name: whoami, port: 80}]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: i, namespace: default}
spec:
  rules: [{host: b, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}]}}]
""")
    both = static_from_flags(["--providers.kubernetescrd", "--providers.kubernetesingress.allowEmptyServices",
                              "--providers.kubernetescrd.allowEmptyServices", "--ping"])
    crd_only = static_from_flags(["--providers.kubernetescrd.allowEmptyServices"])
    assert list(PROVIDERS) == ["kubernetescrd", "kubernetes", "kubernetesgateway"]
    providers = {name.rsplit("@", 1)[1] for name in build_config(both, docs).routers}
    assert providers == {"kubernetescrd", "kubernetes", "internal"}
    assert {name.rsplit("@", 1)[1] for name in build_config(crd_only, docs).routers} == {"kubernetescrd"}
    watched = watched_kinds(both)
    assert len(watched) == len(set(watched)) == 27  # 4 shared kinds, ConfigMap, 2 Ingress kinds, 10 CRDs in 2 groups
    assert {"Service", "IngressRoute", "Ingress", "IngressClass"} <= {w.kind for w in watched}
    assert "Ingress" not in {w.kind for w in watched_kinds(crd_only)}
    assert watched_kinds(static_from_flags(["--ping"])) == ()
