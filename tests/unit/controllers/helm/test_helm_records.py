"""Release records as Helm writes them, HelmChart status, chart identification, ignored values, status rows."""

from __future__ import annotations

import base64
import gzip
import json

from pyk3s.cli.manifests_helm import helm_lines, helm_rows
from pyk3s.controllers.helm.chart import Ignored, Manifest, Release
from pyk3s.controllers.helm.charts import identify
from pyk3s.controllers.helm.release import (
    decode_release,
    install_sorted,
    manifest_objects,
    manifest_text,
    release_secret,
)
from pyk3s.controllers.helm.status import ChartOutcome, build_status
from pyk3s.controllers.helm.traefik import CHART, render


def test_release_secret_is_helms_format() -> None:
    objs = [Manifest("traefik/templates/service.yaml", {"apiVersion": "v1", "kind": "Service",
                                                         "metadata": {"name": "s", "namespace": "n"}}),
            Manifest("traefik/templates/rbac/serviceaccount.yaml", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                                     "metadata": {"name": "a", "namespace": "n"}})]
    text = manifest_text(objs)
    assert text.startswith("---\n# Source: traefik/templates/rbac/serviceaccount.yaml\napiVersion: v1\nkind: ServiceAccount")
    secret = release_secret(name="traefik", namespace="kube-system", revision=3, status="deployed", chart=CHART,
                            config={"a": 1}, manifest=text, description="Upgrade complete")
    assert secret["metadata"]["name"] == "sh.helm.release.v1.traefik.v3" and secret["type"] == "helm.sh/release.v1"
    assert secret["metadata"]["labels"] | {"modifiedAt": "x"} == {"name": "traefik", "owner": "helm",
                                                                  "status": "deployed", "version": "3", "modifiedAt": "x"}
    inner = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    assert inner[:2] == b"\x1f\x8b"  # gzip, as Helm stores it
    record = json.loads(gzip.decompress(inner))
    assert record == decode_release(secret)
    assert record["version"] == 3 and record["info"]["status"] == "deployed" and record["config"] == {"a": 1}
    assert record["chart"]["metadata"]["name"] == "traefik" and record["manifest"] == text
    assert [o["kind"] for o in manifest_objects(text)] == ["ServiceAccount", "Service"]


def test_install_order() -> None:
    kinds = [m.obj["kind"] for m in install_sorted(render({}, Release("traefik", "kube-system")).objects)]
    assert kinds == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment", "IngressClass"]


def test_identify_packaged_charts_only() -> None:
    assert identify({"chart": "https://%{KUBERNETES_API}%/static/charts/traefik-37.1.1+up37.1.0.tgz"}).name == "traefik"
    assert identify({"chart": "https://10.43.0.1:443/static/charts/traefik-crd-37.1.1+up37.1.0.tgz"}).name == "traefik-crd"
    assert identify({"chart": "https://%{KUBERNETES_API}%/static/charts/traefik-27.0.0.tgz"}) is None
    assert identify({"chart": "traefik", "repo": "https://traefik.github.io/charts"}) is None
    assert identify({"chart": "https://%{KUBERNETES_API}%/static/charts/traefik-37.1.1+up37.1.0.tgz",
                     "chartContent": "H4sI"}) is None


def test_status_says_what_serves_and_what_is_ignored() -> None:
    ok = build_status(ChartOutcome(release="kube-system/traefik", revision=2, chart_version="v",
                              objects=("Deployment kube-system/traefik",),
                              ignored=(Ignored("logs.access.enabled", "--accesslog=true: not honoured"),)), "url")
    types = {c["type"]: c for c in ok["conditions"]}
    assert types["Failed"]["status"] == "False" and types["JobCreated"]["reason"] == "NativeRender"
    assert types["Deployed"]["message"] == "release kube-system/traefik revision 2: 1 objects"
    assert types["ValuesIgnored"]["status"] == "True" and "logs.access.enabled" in types["ValuesIgnored"]["message"]
    assert ok["ignoredValues"] == [{"key": "logs.access.enabled", "reason": "--accesslog=true: not honoured"}]
    bad = build_status(ChartOutcome("UnsupportedChart", "pyk3s installs only ...", native=False), "grafana")
    assert {c["type"]: c["status"] for c in bad["conditions"]}["Failed"] == "True"
    assert bad["revision"] is None and bad["ignoredValues"] is None


def test_default_render_ignores_nothing_and_unsupported_values_are_named() -> None:
    assert render({}, Release("traefik", "kube-system")).ignored == ()
    ignored = render({"image": {"repository": "example.org/custom/proxy"}, "hub": {"token": "t"},
                      "autoscaling": {"enabled": True}, "globalArguments": ["--global.checknewversion"],
                      "ports": {"web": {"proxyProtocol": {"trustedIPs": ["10.0.0.0/8"]}}},  # honoured
                      "logs": {"access": {"enabled": True, "format": "xml"}},
                      "additionalArguments": ["--tracing.otlp=true"]},
                     Release("traefik", "kube-system")).ignored
    keys = [i.key for i in ignored]
    assert keys == ["autoscaling.enabled", "hub.token", "globalArguments", "image.repository", "logs.access.format",
                    "additionalArguments[0]"]
    assert "example.org/custom/proxy:3.5.1 is not one pyk3s can run" in ignored[3].reason
    assert ignored[4].reason.startswith("--accesslog.format=xml: access log format 'xml' is not known")


def test_status_rows_for_helmcharts() -> None:
    charts = [
        {"metadata": {"name": "traefik", "namespace": "kube-system"}, "spec": {"chart": "u"},
         "status": {"conditions": [{"type": "Failed", "status": "False"}], "release": "kube-system/traefik",
                    "revision": 2, "chartVersion": "37.1.1+up37.1.0", "objects": ["Deployment kube-system/traefik"],
                    "ignoredValues": [{"key": "logs.access.enabled", "reason": "--accesslog=true: not honoured"}]}},
        {"metadata": {"name": "grafana", "namespace": "kube-system"}, "spec": {"chart": "grafana"},
         "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "UnsupportedChart",
                                    "message": "pyk3s installs only its packaged charts"}]}},
    ]
    rows = helm_rows(charts)
    assert [r["STATUS"] for r in rows] == ["Failed (UnsupportedChart)", "Deployed"]
    text = "\n".join(helm_lines(rows))
    assert "kube-system/traefik   traefik 37.1.1+up37.1.0" in text
    assert "    objects: Deployment kube-system/traefik" in text
    assert "    ignored: logs.access.enabled: --accesslog=true: not honoured" in text
    assert "    error: pyk3s installs only its packaged charts" in text
