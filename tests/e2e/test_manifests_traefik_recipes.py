"""The guide's Traefik recipes against a real server (objects only; no agent needed):

(d) keep a changed traefik.yaml with --disable traefik, under its own name and as traefik-custom.yaml,
across restarts; (e) restarting a running cluster with --disable traefik removes Traefik's objects.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pyk3s_server import ServerProcess

RESCAN = ["--manifests-rescan-interval", "2"]
ENABLED = ["--disable", "coredns,servicelb", *RESCAN]
DISABLED = ["--disable", "coredns,servicelb", "--disable", "traefik", *RESCAN]  # repeated flag + comma list
OBJECTS = [
    ("-n", "kube-system", "deployment", "traefik"),
    ("-n", "kube-system", "service", "traefik"),
    ("-n", "kube-system", "serviceaccount", "traefik"),
    ("ingressclass", "traefik"),
    ("clusterrole", "traefik-kube-system"),
    ("crd", "ingressroutes.traefik.io"),
]


def exists(srv: ServerProcess, *what: str) -> bool:
    return srv.kubectl("get", *what, check=False).rc == 0


def log_level(srv: ServerProcess) -> str:
    args = srv.kubectl("-n", "kube-system", "get", "deployment", "traefik", "-o",
                       "jsonpath={.spec.template.spec.containers[0].args}").out
    return next((a.split("=", 1)[1] for a in args.strip("[]").replace('"', "").split(",")
                 if a.startswith("--log.level=")), "")


def with_log_level(text: str, level: str) -> str:
    """traefik.yaml with ``logs.general.level`` set in HelmChart traefik's values."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        if d["kind"] == "HelmChart" and d["metadata"]["name"] == "traefik":
            values = yaml.safe_load(d["spec"].get("valuesContent") or "") or {}
            values.setdefault("logs", {}).setdefault("general", {})["level"] = level
            d["spec"]["valuesContent"] = yaml.safe_dump(values, sort_keys=False)
    return yaml.safe_dump_all(docs, sort_keys=False)


@pytest.fixture
def traefik_server(kubectl_bin: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(extra_args=ENABLED)
    try:
        srv.start()
        srv.wait_for(lambda: all(exists(srv, *o) for o in OBJECTS), timeout=20, what="Traefik's objects")
        yield srv
    finally:
        srv.cleanup()


def test_e_restart_with_disable_traefik_removes_its_objects(traefik_server: ServerProcess) -> None:
    srv = traefik_server
    srv.restart(DISABLED)
    srv.wait_for(lambda: not any(exists(srv, *o) for o in OBJECTS), timeout=20, what="Traefik's objects deleted")
    assert not (srv.manifests_dir / "traefik.yaml").exists()
    assert not exists(srv, "-n", "kube-system", "addons.k3s.cattle.io", "traefik")
    reasons = srv.kubectl("-n", "kube-system", "get", "events", "--field-selector",
                          "involvedObject.kind=Addon,involvedObject.name=traefik", "-o",
                          "jsonpath={.items[*].reason}").out
    assert "DeletingManifest" in reasons
    srv.restart(DISABLED)  # and nothing comes back
    assert not (srv.manifests_dir / "traefik.yaml").exists()
    assert not exists(srv, "-n", "kube-system", "deployment", "traefik")


@pytest.mark.parametrize("copy_name", ["traefik.yaml", "traefik-custom.yaml"])
def test_d_changed_copy_is_kept_with_disable_traefik(traefik_server: ServerProcess, tmp_path: Path,
                                                     copy_name: str) -> None:
    srv = traefik_server
    assert log_level(srv) == "INFO"
    saved = tmp_path / "traefik.yaml"
    shutil.copy2(srv.manifests_dir / "traefik.yaml", saved)
    srv.restart(DISABLED)
    srv.wait_for(lambda: not exists(srv, "-n", "kube-system", "addons.k3s.cattle.io", "traefik"), timeout=20,
                 what="pyk3s's Traefik uninstalled")
    assert not any(exists(srv, *o) for o in OBJECTS)

    target = srv.manifests_dir / copy_name
    target.write_text(with_log_level(saved.read_text(), "DEBUG"))
    srv.wait_for(lambda: log_level(srv) == "DEBUG", timeout=10, what="the changed copy applied")
    addon = copy_name.split(".")[0]
    assert srv.kubectl("-n", "kube-system", "get", "addons.k3s.cattle.io", addon).rc == 0

    target.write_text(with_log_level(target.read_text(), "WARN"))
    srv.wait_for(lambda: log_level(srv) == "WARN", timeout=10, what="a further change applied")

    srv.restart(DISABLED)
    assert "level: WARN" in target.read_text()
    srv.wait_for(lambda: log_level(srv) == "WARN" and all(exists(srv, *o) for o in OBJECTS), timeout=10,
                 what="the change after a restart")
    # a live edit of a field the file sets is restored by the next forced pass (a restart)
    srv.kubectl("-n", "kube-system", "label", "ingressclass", "traefik", "app.kubernetes.io/name=edited",
                "--overwrite")
    srv.restart(DISABLED)
    srv.wait_for(lambda: srv.kubectl("get", "ingressclass", "traefik", "-o",
                                     "jsonpath={.metadata.labels.app\\.kubernetes\\.io/name}").out == "traefik",
                 timeout=10, what="the live edit reverted")
