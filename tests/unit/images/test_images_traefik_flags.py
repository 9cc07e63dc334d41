"""Which Traefik flags the ingress honours; the others are reported, never silently dropped."""

from __future__ import annotations

import pytest

from pyk3s.controllers.helm.chart import Release
from pyk3s.controllers.helm.traefik import render
from pyk3s.images.traefik_flags import unhonoured


def test_k3s_default_arguments_are_all_honoured() -> None:
    dep = next(m.obj for m in render({}, Release("traefik", "kube-system")).objects if m.obj["kind"] == "Deployment")
    assert unhonoured(dep["spec"]["template"]["spec"]["containers"][0]["args"]) == []


@pytest.mark.parametrize(("arg", "reason"), [
    ("--accesslog.otlp.http.endpoint=http://c:4318", "not honoured"),
    ("--accesslog.format=xml", "the common format is used"),
    ("--accesslog.fields.headers.names.User-Agent=hide", "not one of keep, drop, redact"),
    ("--metrics.prometheus.headerLabels.useragent=User-Agent", "not honoured"),
    ("--serversTransport.spiffe.ids=spiffe://a", "not honoured"),
    ("--entryPoints.web.http3=true", "not honoured"),
    ("--entryPoints.dns.address=:53/sctp", "unknown protocol 'sctp'"),
    ("--log.format=json", "log format 'json'"),
    ("--tracing.otlp=true", "not honoured"),
])
def test_unhonoured_arguments_say_why(arg: str, reason: str) -> None:
    (found,) = unhonoured([arg])
    assert found.flag == arg and reason in found.reason


@pytest.mark.parametrize("arg", [
    "--entryPoints.web.address=:8000/tcp", "--ENTRYPOINTS.web.http.redirections.entryPoint.to=:443",
    "--log.level=DEBUG", "--log.format=common", "--ping", "--providers.kubernetescrd.allowCrossNamespace=true",
    "--entryPoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8", "--global.checkNewVersion=false",
    "--accesslog=true", "--accesslog.format=json", "--accesslog.fields.names.ClientUsername=drop",
    "--accesslog.fields.headers.names.User-Agent=redact", "--accesslog.filters.statuscodes=200,300-302",
    "--metrics.prometheus.addRoutersLabels=true", "--serversTransport.insecureSkipVerify=true",
    "--serversTransport.rootCAs=/ca.pem", "--providers.kubernetesingress.nativeLBByDefault=true",
    "--entryPoints.web.proxyProtocol.trustedIPs=10.0.0.0/8", "--entryPoints.web.proxyProtocol.insecure",
    "--entryPoints.dns.address=:53/udp", "--entryPoints.dns.udp.timeout=10s",
    "--entryPoints.web.transport.respondingTimeouts.readTimeout=5s", "--tcpServersTransport.dialTimeout=5s",
])
def test_honoured_arguments(arg: str) -> None:
    assert unhonoured([arg]) == []


def test_value_in_the_next_argument() -> None:
    found = unhonoured(["--log.level", "DEBUG", "--accesslog.format", "xml", "--ping"])
    assert [u.flag for u in found] == ["--accesslog.format"]
