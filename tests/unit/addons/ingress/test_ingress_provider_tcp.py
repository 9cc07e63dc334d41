"""kubernetesCRD provider, TCP and UDP: the scenarios of Traefik's crd fixtures (fixtures/tcp, fixtures/udp)
with the configurations its kubernetes_test.go expects (TestLoadIngressRouteTCPs, TestLoadIngressRouteUDPs,
TestCrossNamespace, TestNativeLB, TestNodePortLB, TestGlobalNativeLB).

The objects below carry the fixtures' names, rules and addresses, so the generated names (hashes of the
rules) are Traefik's. Where Traefik drops a router or a service with only a log line, pyk3s keeps it with an
``error`` or a ``warning``: those cases say so next to the expected value.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from pyk3s.addons.ingress.config.dynamic_tcp import (
    ProxyProtocolVersion,
    RouterTCPTLS,
    TCPLoadBalancer,
    TCPMiddleware,
    TCPParts,
    TCPRouter,
    TCPServer,
    TCPServersTransport,
    TCPService,
    TCPWeighted,
    TCPWeightedRef,
    TLSClientConfig,
    UDPLoadBalancer,
    UDPRouter,
    UDPServer,
    UDPService,
    UDPWeighted,
)
from pyk3s.addons.ingress.config.static import ProviderOptions
from pyk3s.addons.ingress.providers import build_kubernetescrd
from pyk3s.addons.ingress.providers.common import ObjectIndex
from pyk3s.addons.ingress.providers.crd_tcp import build_crd_tcp

OPTS = ProviderOptions(allow_cross_namespace=True, allow_external_name_services=True)


def _svc(name: str, ns: str, port_name: str, port: int, addrs: list[str], slice_port_name: str | None = None,
         family: str = "IPv4") -> str:
    pname = port_name if slice_port_name is None else slice_port_name
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec: {{ports: [{{name: {port_name}, port: {port}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-abc, namespace: {ns}, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: {family}
ports: [{{name: {pname}, port: {port}}}]
endpoints: [{{addresses: {addrs}, conditions: {{ready: true}}}}]
---"""


def services(kind: str) -> str:
    """fixtures/tcp/services.yml and fixtures/udp/services.yml (kind: "tcp" or "udp")."""
    return "".join([
        _svc(f"whoami{kind}", "default", "myapp", 8000, ["10.10.0.1", "10.10.0.2"]),
        _svc(f"whoami{kind}2", "default", "myapp2", 8080, ["10.10.0.3", "10.10.0.4"]),
        _svc(f"whoami{kind}3", "ns3", "myapp3", 8083, ["10.10.0.7", "10.10.0.8"]),
        _svc(f"whoami{kind}-ipv6", "default", "myapp-ipv6", 8080, ["fd00:10:244:0:1::3", "2001:db8:85a3:8d3:1319:8a2e:370:7348"],
             family="IPv6"),
        _svc(f"whoami{kind}-cross-ns", "cross-ns", "myapp", 8000, ["10.10.0.1", "10.10.0.2"]),
        f"""
apiVersion: v1
kind: Service
metadata: {{name: external-svc-{kind}, namespace: default}}
spec: {{externalName: external.domain, type: ExternalName}}
---
apiVersion: v1
kind: Service
metadata: {{name: external.service.with.port.{kind}, namespace: default}}
spec: {{externalName: external.domain, type: ExternalName, ports: [{{name: http, protocol: TCP, port: 80}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: external.service.with.ipv6, namespace: default}}
spec: {{externalName: "fe80::200:5aee:feaa:20a2", type: ExternalName}}
---
apiVersion: v1
kind: Service
metadata: {{name: whoami{kind}-without-endpointslice-endpoints, namespace: default}}
spec: {{ports: [{{name: myapp, port: 8000}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: whoami{kind}-without-endpointslice-endpoints-abc, namespace: default,
           labels: {{kubernetes.io/service-name: whoami{kind}-without-endpointslice-endpoints}}}}
addressType: IPv4
endpoints: []
---
apiVersion: v1
kind: Service
metadata: {{name: native-svc-{kind}, namespace: default}}
spec: {{ports: [{{name: {kind}, port: 9000}}], type: ClusterIP, clusterIP: 10.10.0.1}}
---
apiVersion: v1
kind: Service
metadata: {{name: native-disabled-svc-{kind}, namespace: default}}
spec: {{ports: [{{name: {kind}, port: 9000}}], type: ClusterIP, clusterIP: 10.10.0.1}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: native-disabled-{kind}-abc, namespace: default, labels: {{kubernetes.io/service-name: native-disabled-svc-{kind}}}}}
addressType: IPv4
ports: [{{name: {kind}, port: 9000}}]
endpoints: [{{addresses: [10.10.0.30, 10.10.0.31], conditions: {{ready: true}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: nodeport-svc-{kind}, namespace: default}}
spec: {{ports: [{{name: myapp, port: 8000, nodePort: 32456}}], type: NodePort, clusterIP: 10.10.0.1}}
---
apiVersion: v1
kind: Service
metadata: {{name: whoami{kind}-nil-port-name, namespace: default}}
spec: {{ports: [{{name: myapp, port: 8000}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: whoami{kind}-nil-port-name-abc, namespace: default, labels: {{kubernetes.io/service-name: whoami{kind}-nil-port-name}}}}
addressType: IPv4
ports: [{{protocol: TCP, port: 8000}}]
endpoints: [{{addresses: [10.10.0.100], conditions: {{ready: true}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: whoami{kind}-nil-port-value, namespace: default}}
spec: {{ports: [{{name: myapp, port: 8000}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: whoami{kind}-nil-port-value-abc, namespace: default, labels: {{kubernetes.io/service-name: whoami{kind}-nil-port-value}}}}
addressType: IPv4
ports: [{{name: myapp, protocol: TCP}}]
endpoints: [{{addresses: [10.10.0.100], conditions: {{ready: true}}}}]
"""])


def route_tcp(routes: str, extra: str = "", spec: str = "", name: str = "test.route") -> str:
    return f"""
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {{name: {name}, namespace: default}}
spec:
  entryPoints: [foo]
  {spec}
  routes:
{routes}
---
{extra}"""


def simple(svc: str = "{name: whoamitcp, port: 8000}", extra_fields: str = "") -> str:
    return f"  - match: HostSNI(`foo.com`)\n    {extra_fields}\n    services: [{svc}]\n"


IPALLOW = """
apiVersion: traefik.io/v1alpha1
kind: MiddlewareTCP
metadata: {name: ipallowlist, namespace: NS}
spec: {ipAllowList: {sourceRange: [127.0.0.1/32]}}
---"""

CERT = ("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0=",
        "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCi0tLS0tRU5EIFBSSVZBVEUgS0VZLS0tLS0=")
SUPERSECRET = f"""
apiVersion: v1
kind: Secret
metadata: {{name: supersecret, namespace: default}}
data: {{tls.crt: {CERT[0]}, tls.key: {CERT[1]}}}
---"""

FOO = "default-test.route-fdd3e9338e47a45efefc"
BAR = "default-test.route-f44ce589164e656d231c"
LB = TCPService(load_balancer=TCPLoadBalancer(servers=(TCPServer("10.10.0.1:8000"), TCPServer("10.10.0.2:8000"))))
LB2 = TCPService(load_balancer=TCPLoadBalancer(servers=(TCPServer("10.10.0.3:8080"), TCPServer("10.10.0.4:8080"))))
LB3 = TCPService(load_balancer=TCPLoadBalancer(servers=(TCPServer("10.10.0.7:8083"), TCPServer("10.10.0.8:8083"))))
ALLOW = TCPMiddleware("ipAllowList", {"sourceRange": ["127.0.0.1/32"]})


def foo_router(**kw: object) -> TCPRouter:
    return TCPRouter(**{"rule": "HostSNI(`foo.com`)", "service": FOO, "entry_points": ("foo",), **kw})  # type: ignore[arg-type]


def load(text: str, opts: ProviderOptions = OPTS, kind: str = "tcp") -> TCPParts:
    docs = [d for d in yaml.safe_load_all(services(kind) + text) if d]
    return build_crd_tcp(ObjectIndex.build(docs), opts)[0]


CASES_TCP: list[tuple[str, str, ProviderOptions, TCPParts]] = [
    ("simple", route_tcp(simple()), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: LB})),
    ("with_tls_service", route_tcp(simple("{name: whoamitcp, port: 8000, tls: true}")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(load_balancer=TCPLoadBalancer(
         servers=(TCPServer("10.10.0.1:8000", True), TCPServer("10.10.0.2:8000", True))))})),
    ("with_middleware", route_tcp(simple(extra_fields="middlewares: [{name: ipallowlist}, {name: ipallowlist, namespace: foo}]"),
                                  IPALLOW.replace("NS", "default") + IPALLOW.replace("NS", "foo")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(middlewares=("default-ipallowlist", "foo-ipallowlist"))},
              tcp_services={FOO: LB}, tcp_middlewares={"default-ipallowlist": ALLOW, "foo-ipallowlist": ALLOW})),
    ("with_middleware_multiple_hyphens", route_tcp(
        simple(extra_fields="middlewares: [{name: multiple---hyphens}]"),
        IPALLOW.replace("NS", "default").replace("name: ipallowlist", "name: multiple---hyphens")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(middlewares=("default-multiple-hyphens",))}, tcp_services={FOO: LB},
              tcp_middlewares={"default-multiple-hyphens": ALLOW})),
    ("with_middleware_cross_provider", route_tcp(
        simple(extra_fields="middlewares: [{name: ipallowlist}, {name: ipallowlist, namespace: foo}, "
                            "{name: ipallowlist@file}, {name: ipallowlist-foo@file, namespace: foo}]"),
        IPALLOW.replace("NS", "default") + IPALLOW.replace("NS", "foo")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(middlewares=("default-ipallowlist", "foo-ipallowlist", "ipallowlist@file",
                                                        "ipallowlist-foo@file"))},
              tcp_services={FOO: LB}, tcp_middlewares={"default-ipallowlist": ALLOW, "foo-ipallowlist": ALLOW})),
    ("with_two_rules", route_tcp(simple() + simple().replace("foo.com", "bar.com")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(), BAR: foo_router(rule="HostSNI(`bar.com`)", service=BAR)},
              tcp_services={FOO: LB, BAR: LB})),
    ("with_two_identical_rules", route_tcp(simple() + simple()), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: LB})),
    ("with_two_services", route_tcp(simple("{name: whoamitcp, port: 8000, weight: 2}, {name: whoamitcp2, port: 8080, weight: 3}")),
     OPTS, TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={
         FOO: TCPService(weighted=TCPWeighted((TCPWeightedRef(f"{FOO}-whoamitcp-8000", 2),
                                               TCPWeightedRef(f"{FOO}-whoamitcp2-8080", 3)))),
         f"{FOO}-whoamitcp-8000": LB, f"{FOO}-whoamitcp2-8080": LB2})),
    # Traefik drops the fourth service silently; pyk3s says so on the router
    ("with_different_services_ns", route_tcp(simple(
        "{name: whoamitcp, port: 8000, weight: 2}, {name: whoamitcp2, namespace: default, port: 8080, weight: 3}, "
        "{name: whoamitcp3, namespace: ns3, port: 8083, weight: 4}, {name: whoamitcp, namespace: unknowns, port: 8080}")),
     OPTS, TCPParts(tcp_routers={FOO: foo_router(warnings=(
         "service whoamitcp (port 8080) left out: kubernetes service not found: unknowns/whoamitcp",))},
         tcp_services={
         FOO: TCPService(weighted=TCPWeighted((TCPWeightedRef(f"{FOO}-whoamitcp-8000", 2),
                                               TCPWeightedRef(f"{FOO}-whoamitcp2-8080", 3),
                                               TCPWeightedRef(f"{FOO}-whoamitcp3-8083", 4)))),
         f"{FOO}-whoamitcp-8000": LB, f"{FOO}-whoamitcp2-8080": LB2, f"{FOO}-whoamitcp3-8083": LB3})),
    ("ingress class does not match", route_tcp(simple()), replace(OPTS, ingress_class="tchouk"), TCPParts()),
    # Traefik skips the route; pyk3s lists it with its error
    ("with_no_rule_value", route_tcp("  - match: ''\n    services: [{name: whoamitcp, port: 8000}]\n"), OPTS,
     TCPParts(tcp_routers={"default-test.route-e3b0c44298fc1c149afb": TCPRouter(
         rule="", service="default-test.route-e3b0c44298fc1c149afb", entry_points=("foo",),
         error="routes[0].match is empty")})),
    ("with_tls", route_tcp(simple(), SUPERSECRET, "tls: {secretName: supersecret}"), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS())}, tcp_services={FOO: LB})),
    ("with_tls_passthrough", route_tcp(simple(), SUPERSECRET, "tls: {secretName: supersecret, passthrough: true}"), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS(passthrough=True), warnings=(
         "tls.secretName supersecret: not used by a passthrough route (the backend terminates TLS)",))},
         tcp_services={FOO: LB})),
    ("with_tls_options", route_tcp(simple(), "", "tls: {options: {name: foo}}"), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS(options="default-foo"))}, tcp_services={FOO: LB})),
    ("with_tls_options_and_specific_namespace", route_tcp(simple(), "", "tls: {options: {name: foo, namespace: myns}}"),
     OPTS, TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS(options="myns-foo"))}, tcp_services={FOO: LB})),
    ("with_unknown_tls_options", route_tcp(simple(), "", "tls: {options: {name: unknown}}"), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS(options="default-unknown"))}, tcp_services={FOO: LB})),
    ("with_unknown_tls_options_namespace", route_tcp(simple(), "", "tls: {options: {name: foo, namespace: unknown}}"),
     OPTS, TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS(options="unknown-foo"))}, tcp_services={FOO: LB})),
    ("with_tls_acme", route_tcp(simple(), "", "tls: {secretName: null}"), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS())}, tcp_services={FOO: LB})),
    ("with_termination_delay", route_tcp(simple("{name: whoamitcp, port: 8000, terminationDelay: 500}")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: replace(
         LB, load_balancer=replace(LB.load_balancer, termination_delay=500))})),  # type: ignore[arg-type]
    ("with_tls_store", route_tcp(simple(), SUPERSECRET, "tls: {store: {name: default}}"), OPTS,
     TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS())}, tcp_services={FOO: LB})),
    ("with_externalname", route_tcp(simple("{name: external-svc-tcp, port: 8000}")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(load_balancer=TCPLoadBalancer(
         servers=(TCPServer("external.domain:8000"),)))})),
    ("with_externalname_with_port", route_tcp(simple("{name: external.service.with.port.tcp, port: 80}")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(load_balancer=TCPLoadBalancer(
         servers=(TCPServer("external.domain:80"),)))})),
    # Traefik: the router stays, its service is missing (the router is in error at run time)
    ("with_externalname_without_ports", route_tcp(simple("{name: external-svc-tcp}")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={
         FOO: TCPService(error="cannot create service: ingressRoute service port not defined")})),
    ("with_ingressclassname", route_tcp(simple(), spec="ingressClassName: traefik-lb"),
     replace(OPTS, ingress_class="traefik-lb"), TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: LB})),
    ("with_ingressclassname_and_deprecated_annotation", route_tcp(simple(), spec="ingressClassName: traefik-lb").replace(
        "metadata: {name: test.route, namespace: default}",
        "metadata: {name: test.route, namespace: default, annotations: {kubernetes.io/ingress.class: traefik}}"),
     replace(OPTS, ingress_class="traefik-lb"), TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: LB})),
    ("with_deprecated_annotation_only", route_tcp(simple()).replace(
        "metadata: {name: test.route, namespace: default}",
        "metadata: {name: test.route, namespace: default, annotations: {kubernetes.io/ingress.class: traefik-lb}}"),
     replace(OPTS, ingress_class="traefik-lb"), TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: LB})),
    ("with_ipv6", route_tcp("  - match: HostSNI(`*`)\n    services: [{name: whoamitcp-ipv6, port: 8080}, "
                            "{name: external.service.with.ipv6, port: 8080}]\n"), OPTS,
     TCPParts(tcp_routers={"default-test.route-673acf455cb2dab0b43a": TCPRouter(
         rule="HostSNI(`*`)", service="default-test.route-673acf455cb2dab0b43a", entry_points=("foo",))},
         tcp_services={
             "default-test.route-673acf455cb2dab0b43a": TCPService(weighted=TCPWeighted((
                 TCPWeightedRef("default-test.route-673acf455cb2dab0b43a-whoamitcp-ipv6-8080", 1),
                 TCPWeightedRef("default-test.route-673acf455cb2dab0b43a-external.service.with.ipv6-8080", 1)))),
             "default-test.route-673acf455cb2dab0b43a-whoamitcp-ipv6-8080": TCPService(load_balancer=TCPLoadBalancer(
                 servers=(TCPServer("[fd00:10:244:0:1::3]:8080"), TCPServer("[2001:db8:85a3:8d3:1319:8a2e:370:7348]:8080")))),
             "default-test.route-673acf455cb2dab0b43a-external.service.with.ipv6-8080": TCPService(
                 load_balancer=TCPLoadBalancer(servers=(TCPServer("[fe80::200:5aee:feaa:20a2]:8080"),)))})),
    ("with_proxyprotocol", route_tcp(simple("{name: whoamitcp, port: 8000, proxyProtocol: {version: 2}}")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: replace(LB, load_balancer=replace(
         LB.load_balancer, proxy_protocol=ProxyProtocolVersion(2)))})),  # type: ignore[arg-type]
    ("with_empty_services (disallowed)", route_tcp(simple("{name: whoamitcp-without-endpointslice-endpoints, port: 8000}")),
     OPTS, TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(
         error="cannot create service: no servers found for default/whoamitcp-without-endpointslice-endpoints")})),
    ("with_empty_services (allowed)", route_tcp(simple("{name: whoamitcp-without-endpointslice-endpoints, port: 8000}")),
     replace(OPTS, allow_empty_services=True),
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(load_balancer=TCPLoadBalancer())})),
    ("with_nil_endpointslice_port_name", route_tcp(simple("{name: whoamitcp-nil-port-name, port: 8000}")),
     replace(OPTS, allow_empty_services=True),
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(load_balancer=TCPLoadBalancer())})),
    ("with_nil_endpointslice_port_value", route_tcp(simple("{name: whoamitcp-nil-port-value, port: 8000}")),
     replace(OPTS, allow_empty_services=True),
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(load_balancer=TCPLoadBalancer())})),
    ("with_native_service_lb", route_tcp(simple("{name: native-svc-tcp, port: 9000, nativeLB: true}")), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(load_balancer=TCPLoadBalancer(
         servers=(TCPServer("10.10.0.1:9000"),)))})),
    ("with_global_native_service_lb", route_tcp(simple("{name: native-svc-tcp, port: 9000}"), name="global-native-lb"),
     replace(OPTS, native_lb_by_default=True),
     TCPParts(tcp_routers={"default-global-native-lb-fdd3e9338e47a45efefc": foo_router(
         service="default-global-native-lb-fdd3e9338e47a45efefc")},
         tcp_services={"default-global-native-lb-fdd3e9338e47a45efefc": TCPService(load_balancer=TCPLoadBalancer(
             servers=(TCPServer("10.10.0.1:9000"),)))})),
    ("with_native_service_lb_disabled", route_tcp(simple("{name: native-disabled-svc-tcp, port: 9000, nativeLB: false}"),
                                                  name="tcp.route.native-disabled"),
     replace(OPTS, native_lb_by_default=True),
     TCPParts(tcp_routers={"default-tcp.route.native-disabled-fdd3e9338e47a45efefc": foo_router(
         service="default-tcp.route.native-disabled-fdd3e9338e47a45efefc")},
         tcp_services={"default-tcp.route.native-disabled-fdd3e9338e47a45efefc": TCPService(
             load_balancer=TCPLoadBalancer(servers=(TCPServer("10.10.0.30:9000"), TCPServer("10.10.0.31:9000"))))})),
    ("with_node_port_service_lb", route_tcp(simple("{name: nodeport-svc-tcp, port: 8000, nodePortLB: true}"),
                                            "kind: Node\napiVersion: v1\nmetadata: {name: traefik-node}\n"
                                            "status: {addresses: [{type: InternalIP, address: 172.16.4.4}]}\n"), OPTS,
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(load_balancer=TCPLoadBalancer(
         servers=(TCPServer("172.16.4.4:32456"),)))})),
]


@pytest.mark.parametrize(("fixture", "text", "opts", "want"), CASES_TCP, ids=[c[0] for c in CASES_TCP])
def test_ingressroutetcp(fixture: str, text: str, opts: ProviderOptions, want: TCPParts) -> None:
    assert load(text, opts) == want


def test_tls_certificates_join_the_default_store() -> None:
    docs = [d for d in yaml.safe_load_all(services("tcp") + route_tcp(simple(), SUPERSECRET, "tls: {secretName: supersecret}"))
            if d]
    cfg = build_kubernetescrd(ObjectIndex.build(docs), OPTS)
    assert [c.source for c in cfg.certificates] == ["default/supersecret"]
    assert cfg.certificates[0].cert_pem == "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"


def test_servers_transport() -> None:
    """fixtures/tcp/with_servers_transport.yml: keys, defaults, CA and certificate loading order."""
    def secret(name: str, **data: str) -> str:
        import base64
        body = ", ".join(f"{k.replace('_', '.')}: {base64.b64encode(v.encode()).decode()}" for k, v in data.items())
        return f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: foo}}\ndata: {{{body}}}\n---\n"

    objs = (secret("root-ca0", foobar="TESTROOTCAS0") + secret("root-ca1", tls_ca="TESTROOTCAS1")
            + secret("root-ca2", tls_ca="TESTROOTCAS2") + secret("root-ca3", ca_crt="TESTROOTCAS3")
            + secret("root-ca4", ca_crt="TESTROOTCAS4", tls_ca="TESTROOTCAS5") + secret("root-ca5", ca_crt="TESTROOTCAS6")
            + secret("root-ca6", ca_crt="TESTROOTCAS7") + secret("mtls1", tls_crt="TESTCERT1", tls_key="TESTKEY1")
            + secret("mtls2", tls_crt="TESTCERT2", tls_key="TESTKEY2")
            + secret("allcerts", ca_crt="TESTALLCERTS", tls_crt="TESTCERT3", tls_key="TESTKEY3") + """
apiVersion: v1
kind: ConfigMap
metadata: {name: root-ca-as-config-map, namespace: foo}
data: {ca.crt: TESTROOTCASFROMCONFIGMAP}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: root-ca-as-config-map-2, namespace: foo}
data: {ca.crt: TESTROOTCASFROMCONFIGMAP2}
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransportTCP
metadata: {name: test, namespace: foo}
spec:
  tls:
    serverName: test
    insecureSkipVerify: true
    peerCertURI: foo://bar
    rootCAsSecrets: [root-ca0, root-ca1, root-ca2, root-ca3, root-ca4, allcerts]
    rootCAs: [{configMap: root-ca-as-config-map}, {secret: root-ca5}, {configMap: root-ca-as-config-map-2, secret: root-ca6}]
    certificatesSecrets: [mtls1, mtls2, allcerts]
  dialTimeout: 42
  dialKeepAlive: 42
  terminationDelay: 42
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransportTCP
metadata: {name: test, namespace: default}
spec: {tls: {serverName: test}}
---""" + route_tcp(simple("{name: whoamitcp, port: 8000, serversTransport: test}, "
                         "{name: whoamitcp2, port: 8080, serversTransport: default-test}")))
    parts = load(objs)
    assert parts.tcp_servers_transports == {
        "foo-test": TCPServersTransport(
            dial_timeout=42.0, dial_keep_alive=42.0, termination_delay=42.0,
            tls=TLSClientConfig(server_name="test", insecure_skip_verify=True, root_cas=(
                "TESTROOTCAS0", "TESTROOTCAS1", "TESTROOTCAS2", "TESTROOTCAS3", "TESTROOTCAS5", "TESTALLCERTS",
                "TESTROOTCASFROMCONFIGMAP", "TESTROOTCAS6"),
                certificates=(("TESTCERT1", "TESTKEY1"), ("TESTCERT2", "TESTKEY2"), ("TESTCERT3", "TESTKEY3")),
                peer_cert_uri="foo://bar"),
            warnings=("tls.rootCAs: both secret and configMap are defined; entry skipped",)),
        "default-test": TCPServersTransport(tls=TLSClientConfig(server_name="test")),
    }
    assert parts.tcp_services[f"{FOO}-whoamitcp-8000"].load_balancer.servers_transport == "default-test"  # type: ignore[union-attr]
    assert parts.tcp_services[f"{FOO}-whoamitcp2-8080"].load_balancer.servers_transport == "default-default-test"  # type: ignore[union-attr]


def test_servers_transport_spiffe_is_an_error() -> None:
    parts = load("""
apiVersion: traefik.io/v1alpha1
kind: ServersTransportTCP
metadata: {name: st, namespace: default}
spec: {tls: {spiffe: {ids: ["spiffe://foo/buz"]}}, dialTimeout: nope}
""")
    st = parts.tcp_servers_transports["default-st"]
    assert st.error == "tls.spiffe: SPIFFE is not supported by pyk3s"
    assert st.dial_timeout == 30.0 and "invalid duration 'nope'" in st.warnings[0]


# TestCrossNamespace, TCP and UDP cases: (fixture, allowCrossNamespace, expected)
CROSS = [
    ("with_middleware_with_cross_namespace", False,
     route_tcp(simple(extra_fields="middlewares: [{name: ipallowlist}]")
               + simple(extra_fields="middlewares: [{name: ipallowlist, namespace: cross-ns}]").replace("foo.com", "bar.com"),
               IPALLOW.replace("NS", "default") + IPALLOW.replace("NS", "cross-ns")),
     # Traefik drops the second route; pyk3s lists it with its error
     TCPParts(tcp_routers={FOO: foo_router(middlewares=("default-ipallowlist",)), BAR: foo_router(
         rule="HostSNI(`bar.com`)", service=BAR, error="invalid reference to middleware cross-ns/ipallowlist: "
         "allowCrossNamespace is disabled, cross-namespace are disallowed")},
         tcp_services={FOO: LB}, tcp_middlewares={"default-ipallowlist": ALLOW, "cross-ns-ipallowlist": ALLOW})),
    ("with_middleware_with_cross_namespace", True,
     route_tcp(simple(extra_fields="middlewares: [{name: ipallowlist}]")
               + simple(extra_fields="middlewares: [{name: ipallowlist, namespace: cross-ns}]").replace("foo.com", "bar.com"),
               IPALLOW.replace("NS", "default") + IPALLOW.replace("NS", "cross-ns")),
     TCPParts(tcp_routers={FOO: foo_router(middlewares=("default-ipallowlist",)), BAR: foo_router(
         rule="HostSNI(`bar.com`)", service=BAR, middlewares=("cross-ns-ipallowlist",))},
         tcp_services={FOO: LB, BAR: LB}, tcp_middlewares={"default-ipallowlist": ALLOW, "cross-ns-ipallowlist": ALLOW})),
    ("with_cross_namespace", True, route_tcp(simple("{name: whoamitcp-cross-ns, namespace: cross-ns, port: 8000}")),
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: LB})),
    ("with_cross_namespace", False, route_tcp(simple("{name: whoamitcp-cross-ns, namespace: cross-ns, port: 8000}")),
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: TCPService(
         error="cannot create service: tcp service cross-ns/whoamitcp-cross-ns is not in the parent resource namespace default")})),
    ("with_servers_transport_cross_namespace", True,
     route_tcp(simple("{name: whoamitcp, port: 8000, serversTransport: cross-ns-st-cross-ns@kubernetescrd}",
                      "priority: 12"),
               "apiVersion: traefik.io/v1alpha1\nkind: ServersTransportTCP\nmetadata: {name: st-cross-ns, namespace: cross-ns}\n"
               "spec: {dialKeepAlive: 0}\n"),
     TCPParts(tcp_routers={FOO: foo_router(priority=12)}, tcp_services={FOO: replace(LB, load_balancer=replace(
         LB.load_balancer, servers_transport="cross-ns-st-cross-ns@kubernetescrd"))},  # type: ignore[arg-type]
         tcp_servers_transports={"cross-ns-st-cross-ns": TCPServersTransport(dial_keep_alive=0.0)})),
    ("with_servers_transport_cross_namespace", False,
     route_tcp(simple("{name: whoamitcp, port: 8000, serversTransport: cross-ns-st-cross-ns@kubernetescrd}",
                      "priority: 12"),
               "apiVersion: traefik.io/v1alpha1\nkind: ServersTransportTCP\nmetadata: {name: st-cross-ns, namespace: cross-ns}\n"
               "spec: {dialKeepAlive: 0}\n"),
     TCPParts(tcp_routers={FOO: foo_router(priority=12)}, tcp_services={FOO: TCPService(
         error="cannot create service: invalid reference to serversTransport cross-ns-st-cross-ns@kubernetescrd: "
               "namespace-name@kubernetescrd format is not allowed when crossnamespace is disallowed")},
         tcp_servers_transports={"cross-ns-st-cross-ns": TCPServersTransport(dial_keep_alive=0.0)})),
    ("with_tls_options_cross_namespace", True, route_tcp(simple(), "", "tls: {options: {name: tls-options-cn, namespace: cross-ns}}"),
     TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS(options="cross-ns-tls-options-cn"))}, tcp_services={FOO: LB})),
    # Traefik drops the router (the service stays); pyk3s lists it with its error
    ("with_tls_options_cross_namespace", False, route_tcp(simple(), "", "tls: {options: {name: tls-options-cn, namespace: cross-ns}}"),
     TCPParts(tcp_routers={FOO: foo_router(error="invalid reference to TLSOption cross-ns/tls-options-cn: "
                                                 "allowCrossNamespace is disabled, cross-namespace are disallowed")},
              tcp_services={FOO: LB})),
    ("with_tls_options_cross_provider", False, route_tcp(simple(), "", "tls: {options: {name: foo@file}}"),
     TCPParts(tcp_routers={FOO: foo_router(tls=RouterTCPTLS(options="foo@file"))}, tcp_services={FOO: LB})),
    ("with_servers_transport_cross_provider", False, route_tcp(simple("{name: whoamitcp, port: 8000, serversTransport: foo@file}")),
     TCPParts(tcp_routers={FOO: foo_router()}, tcp_services={FOO: replace(LB, load_balancer=replace(
         LB.load_balancer, servers_transport="foo@file"))})),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("fixture", "allow", "text", "want"), CROSS, ids=[f"{c[0]}-{c[1]}" for c in CROSS])
def test_cross_namespace(fixture: str, allow: bool, text: str, want: TCPParts) -> None:
    assert load(text, ProviderOptions(allow_cross_namespace=allow, allow_external_name_services=True)) == want


def test_warnings_for_what_has_no_effect() -> None:
    parts = load(route_tcp(simple(), "", "tls: {certResolver: le, store: {name: other}, domains: [{main: foo.com}]}"))
    assert parts.tcp_routers[FOO].warnings == (
        "tls.store other: only the TLSStore named default holds certificates; it is used",
        "tls.certResolver le: ACME is not supported; certificates come from Secrets and the default TLSStore")


def test_missing_tls_secret_is_a_warning() -> None:
    parts = load(route_tcp(simple(), "", "tls: {secretName: nope}"))
    assert parts.tcp_routers[FOO].warnings == (
        "tls.secretName: secret default/nope does not exist; the default certificate is served instead",)


def test_middleware_tcp_kinds() -> None:
    parts = load("""
apiVersion: traefik.containo.us/v1alpha1
kind: MiddlewareTCP
metadata: {name: limit, namespace: default}
spec: {inFlightConn: {amount: 10}}
---
apiVersion: traefik.containo.us/v1alpha1
kind: MiddlewareTCP
metadata: {name: old, namespace: default}
spec: {ipWhiteList: {sourceRange: [10.0.0.0/8]}}
---
apiVersion: traefik.io/v1alpha1
kind: MiddlewareTCP
metadata: {name: both, namespace: default}
spec: {inFlightConn: {amount: 1}, ipAllowList: {sourceRange: [10.0.0.0/8]}}
---
apiVersion: traefik.io/v1alpha1
kind: MiddlewareTCP
metadata: {name: none, namespace: default}
spec: {}
""")
    mws = parts.tcp_middlewares
    assert mws["default-limit"] == TCPMiddleware("inFlightConn", {"amount": 10})
    assert mws["default-old"] == TCPMiddleware("ipWhiteList", {"sourceRange": ["10.0.0.0/8"]})
    assert "multi-types middleware not supported" in mws["default-both"].error
    assert mws["default-none"].error == "invalid middleware type or middleware does not exist"


# -------------------------------------------------------------------------------------------------- UDP
def route_udp(routes: str, name: str = "test.route") -> str:
    return f"""
apiVersion: traefik.io/v1alpha1
kind: IngressRouteUDP
metadata: {{name: {name}, namespace: default}}
spec:
  entryPoints: [foo]
  routes:
{routes}
"""


R0 = "default-test.route-0"
ULB = UDPService(load_balancer=UDPLoadBalancer((UDPServer("10.10.0.1:8000"), UDPServer("10.10.0.2:8000"))))
ULB2 = UDPService(load_balancer=UDPLoadBalancer((UDPServer("10.10.0.3:8080"), UDPServer("10.10.0.4:8080"))))
ULB3 = UDPService(load_balancer=UDPLoadBalancer((UDPServer("10.10.0.7:8083"), UDPServer("10.10.0.8:8083"))))
R0_ROUTER = UDPRouter(service=R0, entry_points=("foo",))

CASES_UDP: list[tuple[str, str, ProviderOptions, TCPParts]] = [
    ("simple", route_udp("  - services: [{name: whoamiudp, port: 8000}]"), OPTS,
     TCPParts(udp_routers={R0: R0_ROUTER}, udp_services={R0: ULB})),
    ("with_two_routes", route_udp("  - services: [{name: whoamiudp, port: 8000}]\n  - services: [{name: whoamiudp2, port: 8080}]"),
     OPTS, TCPParts(udp_routers={R0: R0_ROUTER, "default-test.route-1": UDPRouter("default-test.route-1", ("foo",))},
                    udp_services={R0: ULB, "default-test.route-1": ULB2})),
    ("with_two_services", route_udp("  - services: [{name: whoamiudp, port: 8000, weight: 2}, {name: whoamiudp2, port: 8080, weight: 3}]"),
     OPTS, TCPParts(udp_routers={R0: R0_ROUTER}, udp_services={
         R0: UDPService(weighted=UDPWeighted((TCPWeightedRef(f"{R0}-whoamiudp-8000", 2), TCPWeightedRef(f"{R0}-whoamiudp2-8080", 3)))),
         f"{R0}-whoamiudp-8000": ULB, f"{R0}-whoamiudp2-8080": ULB2})),
    ("with_different_services_ns", route_udp(
        "  - services: [{name: whoamiudp, port: 8000, weight: 2}, {name: whoamiudp2, namespace: default, port: 8080, weight: 3},"
        " {name: whoamiudp3, namespace: ns3, port: 8083, weight: 4}, {name: whoamiudp, namespace: unknowns, port: 8080}]"),
     OPTS, TCPParts(udp_routers={R0: replace(R0_ROUTER, warnings=(
         "service whoamiudp (port 8080) left out: kubernetes service not found: unknowns/whoamiudp",))}, udp_services={
         R0: UDPService(weighted=UDPWeighted((TCPWeightedRef(f"{R0}-whoamiudp-8000", 2), TCPWeightedRef(f"{R0}-whoamiudp2-8080", 3),
                                              TCPWeightedRef(f"{R0}-whoamiudp3-8083", 4)))),
         f"{R0}-whoamiudp-8000": ULB, f"{R0}-whoamiudp2-8080": ULB2, f"{R0}-whoamiudp3-8083": ULB3})),
    ("with_externalname", route_udp("  - services: [{name: external-svc-udp, port: 8000}]"), OPTS,
     TCPParts(udp_routers={R0: R0_ROUTER}, udp_services={R0: UDPService(load_balancer=UDPLoadBalancer((UDPServer("external.domain:8000"),)))})),
    ("with_externalname_service", route_udp("  - services: [{name: external.service.with.port.udp, port: 80}]"), OPTS,
     TCPParts(udp_routers={R0: R0_ROUTER}, udp_services={R0: UDPService(load_balancer=UDPLoadBalancer((UDPServer("external.domain:80"),)))})),
    ("with_externalname_without_ports", route_udp("  - services: [{name: external-svc-udp}]"), OPTS,
     TCPParts(udp_routers={R0: R0_ROUTER}, udp_services={R0: UDPService(error="cannot create service: ingressRoute service port not defined")})),
    ("ingress class does not match", route_udp("  - services: [{name: whoamiudp, port: 8000}]"),
     replace(OPTS, ingress_class="tchouk"), TCPParts()),
    ("with_empty_services (allowed)", route_udp("  - services: [{name: whoamiudp-without-endpointslice-endpoints, port: 8000}]"),
     replace(OPTS, allow_empty_services=True), TCPParts(udp_routers={R0: R0_ROUTER}, udp_services={R0: UDPService(load_balancer=UDPLoadBalancer())})),
    ("with_native_service_lb", route_udp("  - services: [{name: native-svc-udp, port: 9000, nativeLB: true}]"), OPTS,
     TCPParts(udp_routers={R0: R0_ROUTER}, udp_services={R0: UDPService(load_balancer=UDPLoadBalancer((UDPServer("10.10.0.1:9000"),)))})),
    ("with_cross_namespace (disallowed)", route_udp("  - services: [{name: whoamiudp-cross-ns, namespace: cross-ns, port: 8000}]"),
     ProviderOptions(), TCPParts(udp_routers={R0: R0_ROUTER}, udp_services={R0: UDPService(
         error="cannot create service: udp service cross-ns/whoamiudp-cross-ns is not in the parent resource namespace default")})),
]


@pytest.mark.parametrize(("fixture", "text", "opts", "want"), CASES_UDP, ids=[c[0] for c in CASES_UDP])
def test_ingressrouteudp(fixture: str, text: str, opts: ProviderOptions, want: TCPParts) -> None:
    assert load(text, opts, kind="udp") == want


def test_node_port_lb_on_a_cluster_ip_service_is_a_warning() -> None:
    parts = load(route_tcp(simple("{name: whoamitcp, port: 8000, nodePortLB: true}")))
    assert parts.tcp_routers[FOO].warnings == (
        "service whoamitcp: nodePortLB applies to NodePort Services only, this one is ClusterIP: its endpoints are used",)
    assert parts.tcp_services[FOO] == LB
