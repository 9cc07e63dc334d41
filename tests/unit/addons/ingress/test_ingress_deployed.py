"""The ingress as the cluster runs it: static configuration from the Traefik Deployment's arguments,
and the entry point behind each port of the published Service (K3s: 80 -> web on :8000)."""

from __future__ import annotations

from packaged_traefik import packaged_traefik

from pyk3s.addons.ingress.deployed import DEFAULT_FLAGS, deployed, traefik_deployment


def _packaged() -> tuple[dict, dict]:
    return packaged_traefik("Deployment")[0], packaged_traefik("Service")[0]


def test_k3s_packaged_traefik_publishes_web_and_websecure_on_80_and_443() -> None:
    dep, svc = _packaged()
    got = deployed([dep], [svc])
    assert got.source == "kube-system/traefik" and got.service == "kube-system/traefik" and not got.problem
    assert got.static.entrypoints["web"].port == 8000 and got.static.crd is not None
    assert got.static.crd.allow_empty_services
    assert dict(got.ports) == {80: "web", 443: "websecure"}
    assert got.entrypoint_for("http://web.example/") == "web"
    assert got.entrypoint_for("https://web.example/") == "websecure"
    # a port an entry point listens on itself is left to explain's own matching
    assert got.entrypoint_for("http://web.example:8000/") == ""
    assert got.entrypoint_for("http://web.example:9999/") == ""


def test_without_a_deployment_the_default_flags_and_no_published_service() -> None:
    got = deployed([], [])
    assert got.source == "default flags" and got.flags == DEFAULT_FLAGS and got.service == ""
    assert got.static.entrypoints["web"].port == 80 and dict(got.ports) == {}


def test_flags_given_win_and_bad_arguments_are_reported_not_fatal() -> None:
    dep, svc = _packaged()
    given = deployed([dep], [svc], ["--entrypoints.http.address=:8000", "--providers.kubernetescrd"])
    assert given.source == "--flag" and list(given.static.entrypoints) == ["http"] and dict(given.ports) == {80: "http"}
    broken = {**dep, "spec": {**dep["spec"], "template": {**dep["spec"]["template"], "spec": {
        **dep["spec"]["template"]["spec"], "containers": [{"name": "traefik", "args": ["--entrypoints.web.port=80"]}]}}}}
    got = deployed([broken], [svc])
    assert got.source == "default flags" and "do not parse" in got.problem


def test_the_traefik_deployment_is_found_by_its_label_kube_system_first() -> None:
    dep, _ = _packaged()
    other = {**dep, "metadata": {**dep["metadata"], "namespace": "apps", "name": "edge"}}
    unrelated = {"metadata": {"name": "web", "namespace": "kube-system", "labels": {"app": "web"}}}
    assert traefik_deployment([other, unrelated, dep]) is dep
    assert traefik_deployment([unrelated]) is None
