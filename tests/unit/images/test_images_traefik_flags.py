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
    ("--accesslog=true", "not honoured"),
    ("--entryPoints.web.proxyProtocol.trustedIPs=10.0.0.0/8", "not honoured"),
    ("--entryPoints.dns.address=:53/udp", "UDP entry points are not served"),
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
])
def test_honoured_arguments(arg: str) -> None:
    assert unhonoured([arg]) == []


def test_value_in_the_next_argument() -> None:
    assert [u.flag for u in unhonoured(["--log.level", "DEBUG", "--accesslog", "--ping"])] == ["--accesslog"]
