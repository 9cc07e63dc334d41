"""The manifests directory end to end: failures reported on the Addon and in `pyk3s manifests status`,
good files beside bad ones, a renamed file, a `.skip`, a CRD with its CR, and a restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from pyk3s_server import REPO, ServerProcess


def cm(name: str, value: str, ns: str = "") -> str:
    meta = f"{{name: {name}, namespace: {ns}}}" if ns else f"{{name: {name}}}"
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {meta}\ndata: {{k: {value}}}\n"


CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.pk.example.com}
spec:
  group: pk.example.com
  names: {kind: Gadget, listKind: GadgetList, plural: gadgets, singular: gadget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


@pytest.fixture
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    s = ServerProcess(extra_args=["--disable", "coredns,traefik,servicelb", "--manifests-rescan-interval", "2"])
    try:
        s.start()
        yield s
    finally:
        s.cleanup()


def status(srv: ServerProcess) -> str:
    p = subprocess.run([sys.executable, "-m", "pyk3s", "manifests", "status", "--data-dir", str(srv.data_dir),
                        "--kubeconfig", str(srv.kubeconfig)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def row(out: str, file: str) -> str:
    return next((line for line in out.splitlines() if line.startswith(file + " ")), "")


def cm_value(srv: ServerProcess, name: str, ns: str = "default") -> str:
    return srv.kubectl("-n", ns, "get", "configmap", name, "-o", "jsonpath={.data.k}", check=False).out


def warnings(srv: ServerProcess, addon: str) -> str:
    return srv.kubectl("-n", "kube-system", "get", "events", "--field-selector",
                       f"involvedObject.kind=Addon,involvedObject.name={addon},type=Warning",
                       "-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}").out


def test_status_with_bad_renamed_skipped_files_and_a_restart(srv: ServerProcess) -> None:
    m = srv.manifests_dir
    (m / "good.yaml").write_text(cm("good", "one"))
    (m / "mixed.yaml").write_text(cm("mixed-a", "one") + "---\n" + cm("mixed-b", "one"))
    (m / "old-name.yaml").write_text(cm("moved", "one"))
    (m / "frozen.yaml").write_text(cm("frozen", "one"))
    (m / "gadget.yaml").write_text("apiVersion: pk.example.com/v1\nkind: Gadget\nmetadata: {name: g1}\n"
                                   "spec: {size: 2}\n---\n" + CRD)
    srv.wait_for(lambda: all(cm_value(srv, n) == "one" for n in ("good", "mixed-a", "mixed-b", "moved", "frozen")),
                 timeout=15, what="the first files applied")
    srv.wait_for(lambda: srv.kubectl("get", "gadgets.pk.example.com", "g1", check=False).rc == 0, timeout=15,
                 what="the CR beside its CRD converging")

    # break things: invalid YAML, an object the API rejects, a rename, a .skip
    (m / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad\n")
    (m / "mixed.yaml").write_text(cm("mixed-a", "two") + "---\n" + cm("Bad_Name", "two"))
    (m / "old-name.yaml").rename(m / "new-name.yaml")
    (m / "frozen.yaml.skip").write_text("")
    (m / "frozen.yaml").write_text(cm("frozen", "two"))
    (m / "good.yaml").write_text(cm("good", "two"))
    (m / "notes.txt").write_text("not a manifest")

    srv.wait_for(lambda: cm_value(srv, "good") == "two" and cm_value(srv, "mixed-a") == "two", timeout=15,
                 what="good files and good objects applied beside broken ones")
    srv.wait_for(lambda: "ParseManifestFailed" in warnings(srv, "bad") and "ApplyManifestFailed"
                 in warnings(srv, "mixed"), timeout=15, what="Warning events")
    bad_events, mixed_events = warnings(srv, "bad"), warnings(srv, "mixed")
    assert str(m / "bad.yaml") in bad_events and "line" in bad_events
    assert str(m / "mixed.yaml") in mixed_events and "document 2 (ConfigMap Bad_Name)" in mixed_events
    assert "a lowercase RFC 1123 subdomain" in mixed_events
    assert cm_value(srv, "mixed-b") == "one", "objects of a half-applied file are not pruned"
    assert cm_value(srv, "frozen") == "one", ".skip leaves the applied objects alone"
    assert "Failed to process config" in srv.log()

    out = status(srv)
    assert "AppliedManifest" in row(out, "good.yaml")
    assert "ParseManifestFailed" in row(out, "bad.yaml")
    assert "ApplyManifestFailed" in row(out, "mixed.yaml")
    assert "AppliedManifest" in row(out, "new-name.yaml") and "kube-system/new-name" in row(out, "new-name.yaml")
    assert "SourceRemoved" in row(out, "old-name.yaml (gone)")
    assert "Skipped" in row(out, "frozen.yaml")
    assert "notes.txt" not in out
    assert "error: Parse manifest at" in out and "document 2 (ConfigMap Bad_Name)" in out
    # the moved object now belongs to the new file's Addon
    owner = srv.kubectl("get", "configmap", "moved", "-o",
                        "jsonpath={.metadata.annotations.objectset\\.rio\\.cattle\\.io/owner-name}").out
    assert owner == "new-name"

    # fix the broken file: the next pass applies it and prunes what the file no longer has
    (m / "mixed.yaml").write_text(cm("mixed-a", "three"))
    srv.wait_for(lambda: cm_value(srv, "mixed-a") == "three" and srv.kubectl(
        "get", "configmap", "mixed-b", check=False).rc != 0, timeout=15, what="the fixed file applied and pruned")

    srv.restart()
    out = status(srv)
    assert "ParseManifestFailed" in row(out, "bad.yaml")
    srv.wait_for(lambda: "AppliedManifest" in row(status(srv), "mixed.yaml"), timeout=15, what="status after restart")
    assert cm_value(srv, "good") == "two" and cm_value(srv, "frozen") == "one"
    (m / "bad.yaml").unlink()  # deleting a file leaves its objects and its Addon
    (m / "good.yaml").unlink()
    srv.wait_for(lambda: "good.yaml (gone)" in status(srv), timeout=15, what="the deleted file shown as gone")
    assert cm_value(srv, "good") == "two"


def test_staging_modes_templates_and_overwrite(kubectl_bin: str) -> None:
    import stat

    s = ServerProcess(extra_args=["--disable", "servicelb", "--cluster-domain", "pk.test"])
    try:
        s.start()
        core = s.manifests_dir / "coredns.yaml"
        assert stat.S_IMODE(s.manifests_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(core.stat().st_mode) == 0o600
        text = core.read_text()
        assert "%{" not in text and "clusterIP: 10.43.0.10" in text and "kubernetes pk.test in-addr.arpa" in text
        core.write_text(text.replace("cache 30", "cache 5"))
        s.restart(["--disable", "servicelb,traefik", "--cluster-domain", "pk.test"])
        assert core.read_text() == text, "a start rewrites the packaged file over local edits"
        s.wait_for(lambda: not (s.manifests_dir / "traefik.yaml").exists(), timeout=15, what="traefik.yaml removed")
    finally:
        s.cleanup()
