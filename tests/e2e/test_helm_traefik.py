"""End-to-end: the packaged Traefik as a Helm release, configured with HelmChartConfig as K3s users do.

One module-scoped cluster (server + embedded agent on a node address of our own, Traefik and ServiceLB
on, cluster DNS off); the tests run in file order against it and send real packets:

1. traefik.yaml's HelmCharts install the chart natively: Traefik serves port 80 as before, the
   HelmChart shows Deployed (and FAILED False in `kubectl get helmcharts`), the release is recorded as
   Helm records it, `pyk3s manifests status` lists the HelmCharts and their objects;
2. K3s docs' HelmChartConfig examples each change the running Traefik and revert when the
   HelmChartConfig is deleted: additionalArguments, the dashboard IngressRoute, redirections from web to
   websecure, two replicas, an extra TCP entry point exposed on the Service;
3. values pyk3s does not act on are reported (status, event, manifests status, and the ingress's own
   pod event for arguments it does not honour); bad values keep the running release;
4. a restart keeps a HelmChartConfig's effect; `--disable traefik` removes everything.

The examples that need the ingress to route TCP, read PROXY headers or write access logs are in
test_helm_traefik_entrypoints.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helm_e2e import (
    ROLL,
    apply_config,
    chart,
    cmdline,
    condition,
    connects,
    curl,
    delete_config,
    events,
    has_args,
    lacks_args,
    manifests_status,
    revision,
    service_ports,
    settled,
    svclb_containers,
    traefik_pods,
)
from pyk3s_server import ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

# -- the cluster -----------------------------------------------------------------------------------------

# Where the packaged chart's container mounts volumes (its data and tmp volumes, the service account
# token), and a data path no node has (persistence.path moved there): the fixture notes which of them the
# node lacks before the cluster starts, so the tests can tell that none was made on the node.
CHART_MOUNT_PATHS = ("/data", "/tmp", "/var/run/secrets/kubernetes.io/serviceaccount")
FRESH_DATA_PATH = f"/pk-data-{uuid.uuid4().hex[:8]}"
LACKED: list[str] = []


@pytest.fixture(scope="module")
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    LACKED[:] = [p for p in (*CHART_MOUNT_PATHS, FRESH_DATA_PATH) if not os.path.lexists(p)]
    server = ServerProcess(agent=True, extra_args=["--disable", "coredns"])
    try:
        server.start(timeout=60)
        yield server
    finally:
        server.cleanup()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert server.ident not in links and server.nft_table not in tables, "cluster left links or nft tables"
    made = [p for p in LACKED if os.path.lexists(p)]
    assert not made, f"mount points made on the node and left after the cluster: {made}"


@pytest.fixture(scope="module")
def node_ip(srv: ServerProcess) -> str:
    assert srv.node is not None
    return srv.node.ip


def serves_404(node_ip: str) -> bool:
    return curl(f"http://{node_ip}:80/").stdout == "404 page not found\n"


# -- 1. the packaged chart -------------------------------------------------------------------------------

def test_packaged_traefik_is_a_helm_release_and_serves(srv: ServerProcess, node_ip: str) -> None:
    pods = srv.wait_for(lambda: settled(srv, lambda p: True), timeout=ROLL, what="a Ready traefik pod")
    c = pods[0]["spec"]["containers"][0]
    assert c["image"] == "rancher/mirrored-library-traefik:3.5.1"
    assert cmdline(pods[0])[1:4] == ["-m", "pyk3s", "traefik"]
    srv.wait_for(lambda: serves_404(node_ip), timeout=60, what="port 80 answering Traefik's 404")
    dep = srv.kubectl("get", "deploy", "-n", "kube-system", "traefik", "-o", "json").json()
    assert dep["metadata"]["labels"]["helm.sh/chart"] == "traefik-37.1.1_up37.1.0"
    assert dep["metadata"]["annotations"]["meta.helm.sh/release-name"] == "traefik"
    assert dep["spec"]["template"]["spec"]["priorityClassName"] == "system-cluster-critical"

    srv.wait_for(lambda: revision(srv) == 1, timeout=30, what="release revision 1")
    assert condition(srv, "Failed")["status"] == "False"
    table = srv.kubectl("get", "helmcharts", "-n", "kube-system").out.splitlines()
    assert table[0].split() == ["NAME", "REPO", "CHART", "VERSION", "TARGETNAMESPACE", "BOOTSTRAP", "FAILED"]
    assert any(line.startswith("traefik ") and line.split()[-1] == "False" for line in table)
    assert "JOB" in srv.kubectl("get", "helmcharts", "-n", "kube-system", "-o", "wide").out.splitlines()[0]

    secrets = srv.kubectl("get", "secrets", "-n", "kube-system", "-l", "owner=helm,name=traefik", "-o",
                          "json").json()["items"]
    assert [s["metadata"]["name"] for s in secrets] == ["sh.helm.release.v1.traefik.v1"]
    assert secrets[0]["type"] == "helm.sh/release.v1" and secrets[0]["metadata"]["labels"]["status"] == "deployed"
    import base64
    import gzip
    import json
    record = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secrets[0]["data"]["release"]))))
    assert "# Source: traefik/templates/deployment.yaml" in record["manifest"]

    out = manifests_status(srv)
    assert "kube-system/traefik       traefik 37.1.1+up37.1.0" in out
    assert "Deployment kube-system/traefik" in out and "CustomResourceDefinition ingressroutes.traefik.io" in out


def test_mount_points_the_node_lacks_are_made_in_the_container_alone(srv: ServerProcess) -> None:
    """The chart's volumes mount at /data (and persistence.path wherever a user moves it): a node without
    that directory gets it in the container's own view, never in its filesystem."""
    pods = srv.wait_for(lambda: settled(srv, lambda p: True), timeout=ROLL, what="a Ready traefik pod")
    mounted = {m["mountPath"] for c in pods[0]["spec"]["containers"] for m in c.get("volumeMounts") or []}
    assert mounted <= set(CHART_MOUNT_PATHS), f"the chart mounts more than this test watches: {mounted}"
    assert not [p for p in LACKED if os.path.lexists(p)], "a mount point was made on the node"

    apply_config(srv, f"persistence:\n  path: {FRESH_DATA_PATH}\n")

    def moved(p: dict[str, Any]) -> bool:
        return any(m["mountPath"] == FRESH_DATA_PATH for m in p["spec"]["containers"][0].get("volumeMounts") or [])
    pods = srv.wait_for(lambda: settled(srv, moved), timeout=ROLL, what=f"traefik with its data at {FRESH_DATA_PATH}")
    name, uid = pods[0]["metadata"]["name"], pods[0]["metadata"]["uid"]
    # the container (and `kubectl exec`, which enters its view) sees the directory and writes to the volume
    out = srv.kubectl("exec", "-n", "kube-system", name, "--", "sh", "-c",
                      f"echo written > {FRESH_DATA_PATH}/probe && ls {FRESH_DATA_PATH}").out
    assert out.split() == ["probe"]
    assert not os.path.lexists(FRESH_DATA_PATH), f"{FRESH_DATA_PATH} was made on the node"
    volume = srv.data_dir / "agent" / "pods" / uid / "_volumes" / "volumes" / "data" / "probe"
    assert volume.read_text() == "written\n"
    delete_config(srv)
    srv.wait_for(lambda: settled(srv, lambda p: not moved(p)), timeout=ROLL, what="traefik with its data at /data")
    assert not [p for p in LACKED if os.path.lexists(p)], "a mount point was made on the node"


# -- 2. K3s docs' HelmChartConfig examples ----------------------------------------------------------------

def test_additional_arguments(srv: ServerProcess, node_ip: str) -> None:
    start = revision(srv)
    apply_config(srv, 'additionalArguments:\n  - "--log.level=DEBUG"\n  - "--api.insecure=true"\n')
    pods = srv.wait_for(lambda: settled(srv, has_args("--log.level=DEBUG", "--api.insecure=true")), timeout=ROLL,
                        what="traefik with the additional arguments")
    ip = pods[0]["status"]["podIP"]
    r = srv.wait_for(lambda: (x := curl("-i", f"http://{ip}:8080/api/overview")).stdout.startswith("HTTP/1.1 200") and x,
                     timeout=30, what="the insecure API on the traefik entry point")
    assert '"http"' in r.stdout
    assert revision(srv) == start + 1
    delete_config(srv)
    pods = srv.wait_for(lambda: settled(srv, lacks_args("--log.level=DEBUG", "--api.insecure=true")), timeout=ROLL,
                        what="traefik back to the packaged arguments")
    ip = pods[0]["status"]["podIP"]
    assert curl("-i", f"http://{ip}:8080/api/overview").stdout.startswith("HTTP/1.1 404")
    srv.wait_for(lambda: serves_404(node_ip), timeout=30, what="port 80 served")


def test_dashboard_enabled(srv: ServerProcess) -> None:
    apply_config(srv, "ingressRoute:\n  dashboard:\n    enabled: true\n")
    srv.wait_for(lambda: srv.kubectl("get", "ingressroute.traefik.io", "-n", "kube-system", "traefik-dashboard",
                                     check=False).rc == 0, timeout=30, what="the dashboard IngressRoute")
    ip = traefik_pods(srv)[0]["status"]["podIP"]
    r = srv.wait_for(lambda: (x := curl("-i", f"http://{ip}:8080/dashboard/")).stdout.startswith("HTTP/1.1 200") and x,
                     timeout=30, what="the dashboard on the traefik entry point")
    assert "<html" in r.stdout.lower()
    delete_config(srv)
    srv.wait_for(lambda: srv.kubectl("get", "ingressroute.traefik.io", "-n", "kube-system", "traefik-dashboard",
                                     check=False).rc != 0, timeout=30, what="the dashboard IngressRoute removed")
    srv.wait_for(lambda: curl("-i", f"http://{ip}:8080/dashboard/").stdout.startswith("HTTP/1.1 404"), timeout=30,
                 what="the dashboard gone")


def test_redirections_to_websecure(srv: ServerProcess, node_ip: str) -> None:
    apply_config(srv, "ports:\n  web:\n    redirections:\n      entryPoint:\n        to: websecure\n"
                      "        scheme: https\n        permanent: true\n")
    srv.wait_for(lambda: settled(srv, has_args("--entryPoints.web.http.redirections.entryPoint.to=:443")),
                 timeout=ROLL, what="traefik redirecting")

    def redirected() -> str:
        r = curl("-i", "-H", "Host: app.example.com", f"http://{node_ip}/some/path?q=1")
        return r.stdout if r.stdout.startswith(("HTTP/1.1 301", "HTTP/1.1 308")) else ""
    head = srv.wait_for(redirected, timeout=30, what="web redirected to websecure")
    assert "Location: https://app.example.com/some/path?q=1" in head
    delete_config(srv)
    srv.wait_for(lambda: settled(srv, lacks_args("--entryPoints.web.http.redirections.entryPoint.to=:443")),
                 timeout=ROLL, what="traefik without the redirection")
    srv.wait_for(lambda: serves_404(node_ip), timeout=30, what="web served again")


def test_two_replicas(srv: ServerProcess, node_ip: str) -> None:
    apply_config(srv, "deployment:\n  replicas: 2\n")
    pods = srv.wait_for(lambda: settled(srv, lambda p: True, count=2), timeout=ROLL, what="two Ready traefik pods")
    for p in pods:
        assert curl(f"http://{p['status']['podIP']}:8000/").stdout == "404 page not found\n"
    delete_config(srv)
    srv.wait_for(lambda: settled(srv, lambda p: True, count=1), timeout=ROLL, what="one traefik pod again")
    srv.wait_for(lambda: serves_404(node_ip), timeout=30, what="port 80 served")


def test_extra_tcp_entry_point_exposed_on_the_service(srv: ServerProcess, node_ip: str) -> None:
    apply_config(srv, "ports:\n  pktcp:\n    port: 9000\n    expose:\n      default: true\n"
                      "    exposedPort: 9000\n    protocol: TCP\n")
    srv.wait_for(lambda: settled(srv, has_args("--entryPoints.pktcp.address=:9000/tcp")), timeout=ROLL,
                 what="traefik with the pktcp entry point")
    srv.wait_for(lambda: service_ports(srv).get("pktcp") == 9000, timeout=30, what="port 9000 on the Service")
    srv.wait_for(lambda: "lb-tcp-9000" in svclb_containers(srv), timeout=30, what="ServiceLB on port 9000")
    srv.wait_for(lambda: connects(node_ip, 9000), timeout=60, what="the node's port 9000 reaching traefik")
    delete_config(srv)
    srv.wait_for(lambda: "pktcp" not in service_ports(srv) and "lb-tcp-9000" not in svclb_containers(srv),
                 timeout=60, what="port 9000 removed")
    srv.wait_for(lambda: settled(srv, lacks_args("--entryPoints.pktcp.address=:9000/tcp")), timeout=ROLL,
                 what="traefik without the pktcp entry point")


# -- 3. reported values, bad values ------------------------------------------------------------------------

def test_values_pyk3s_does_not_act_on_are_reported(srv: ServerProcess, node_ip: str) -> None:
    arg = "--tracing.otlp=true"  # a flag the ingress accepts and ignores (it exports no traces)
    apply_config(srv, f'persistence:\n  enabled: true\nadditionalArguments:\n  - "{arg}"\n')

    def reported() -> dict[str, str] | None:
        ignored = {i["key"]: i["reason"] for i in chart(srv).get("status", {}).get("ignoredValues") or []}
        return ignored if "persistence.enabled" in ignored and "additionalArguments[0]" in ignored else None
    ignored = srv.wait_for(reported, timeout=30, what="ignored values in the HelmChart status")
    assert ignored["additionalArguments[0]"].startswith(f"{arg}: not honoured")
    assert condition(srv, "ValuesIgnored")["status"] == "True" and condition(srv, "Failed")["status"] == "False"
    warning = [e for e in events(srv, "HelmChart", "traefik") if e["reason"] == "ValuesIgnored"]
    assert warning and warning[-1]["type"] == "Warning" and "persistence.enabled" in warning[-1]["message"]
    out = manifests_status(srv)
    assert "    ignored: persistence.enabled: no PersistentVolumeClaim is rendered" in out

    pods = srv.wait_for(lambda: settled(srv, has_args(arg)), timeout=ROLL, what="traefik with the argument")
    name = pods[0]["metadata"]["name"]
    srv.wait_for(lambda: any(e["reason"] == "UnsupportedArgument" and arg in e["message"]
                             for e in events(srv, "Pod", name)), timeout=30, what="the ingress's own report")
    srv.wait_for(lambda: serves_404(node_ip), timeout=30, what="port 80 served")
    delete_config(srv)
    srv.wait_for(lambda: not chart(srv).get("status", {}).get("ignoredValues"), timeout=30, what="nothing ignored")
    srv.wait_for(lambda: settled(srv, lacks_args(arg)), timeout=ROLL, what="traefik without the argument")


@pytest.mark.parametrize(("values", "message"), [
    ("deployment: [unclosed\n", "not valid YAML"),
    ("deployment:\n  replicas: two\n", "deployment.replicas: must be an integer"),
    ("ports:\n  other:\n    port: 8000\n", "entry points other and web both listen on 8000/TCP"),
    ("deploymnet:\n  replicas: 2\n", "deploymnet: unknown value"),
], ids=["yaml", "type", "port-clash", "unknown-key"])
def test_bad_values_keep_the_running_release(srv: ServerProcess, node_ip: str, values: str, message: str) -> None:
    before = settled(srv, lambda p: True)
    assert before is not None
    start = revision(srv)
    apply_config(srv, values)

    def failed() -> dict[str, Any] | None:
        c = condition(srv, "Failed")
        return c if c.get("status") == "True" and message in c.get("message", "") else None
    cond = srv.wait_for(failed, timeout=30, what="the HelmChart failing on the values")
    assert cond["reason"] == "InvalidValues"
    assert any(e["reason"] == "InvalidValues" and message in e["message"] for e in events(srv, "HelmChart", "traefik"))
    assert revision(srv) == start
    assert [p["metadata"]["name"] for p in settled(srv, lambda p: True) or []] == \
        [p["metadata"]["name"] for p in before]
    srv.wait_for(lambda: serves_404(node_ip), timeout=30, what="port 80 served")
    delete_config(srv)
    srv.wait_for(lambda: condition(srv, "Failed").get("status") == "False", timeout=30, what="the failure cleared")


# -- 4. restart, --disable traefik -------------------------------------------------------------------------

def test_restart_keeps_the_chart_config(srv: ServerProcess, node_ip: str) -> None:
    apply_config(srv, 'deployment:\n  replicas: 2\nadditionalArguments:\n  - "--api.insecure=true"\n')
    srv.wait_for(lambda: settled(srv, has_args("--api.insecure=true"), count=2), timeout=ROLL,
                 what="two traefik pods with the argument")
    start = revision(srv)
    srv.restart(timeout=60)
    pods = srv.wait_for(lambda: settled(srv, has_args("--api.insecure=true"), count=2), timeout=ROLL,
                        what="the same after a restart")
    assert revision(srv) == start  # nothing changed, so no new revision
    srv.wait_for(lambda: curl("-i", f"http://{pods[0]['status']['podIP']}:8080/api/overview").stdout.startswith(
        "HTTP/1.1 200"), timeout=30, what="the insecure API after the restart")
    srv.wait_for(lambda: serves_404(node_ip), timeout=60, what="port 80 after the restart")
    delete_config(srv)
    srv.wait_for(lambda: settled(srv, lacks_args("--api.insecure=true"), count=1), timeout=ROLL,
                 what="the packaged settings again")


def test_disable_traefik_removes_it_all(srv: ServerProcess, node_ip: str) -> None:
    srv.restart(extra_args=["--disable", "coredns,traefik"], timeout=60)
    namespaced = ("deployment/traefik", "service/traefik", "serviceaccount/traefik", "helmchart/traefik",
                  "helmchart/traefik-crd", "addon/traefik")
    cluster = ("ingressclass/traefik", "clusterrole/traefik-kube-system", "clusterrolebinding/traefik-kube-system",
               "crd/ingressroutes.traefik.io", "crd/middlewares.traefik.containo.us")

    def gone() -> bool:
        left = [o for o in namespaced if srv.kubectl("get", "-n", "kube-system", o, check=False).rc == 0]
        left += [o for o in cluster if srv.kubectl("get", o, check=False).rc == 0]
        left += [s["metadata"]["name"] for s in srv.kubectl("get", "secrets", "-n", "kube-system", "-l", "owner=helm",
                                                             "-o", "json").json()["items"]]
        left += svclb_containers(srv) + [p["metadata"]["name"] for p in traefik_pods(srv)]
        assert not left, left
        return True
    srv.wait_for(gone, timeout=120, interval=1, what="every Traefik object removed")
    assert not (srv.manifests_dir / "traefik.yaml").exists()
    srv.wait_for(lambda: curl(f"http://{node_ip}:80/", timeout=2).returncode != 0, timeout=30, what="port 80 closed")
