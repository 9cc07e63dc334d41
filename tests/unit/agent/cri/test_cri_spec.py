"""Pod specs as CRI messages: resources, security context, DNS, labels, pull credentials."""

from __future__ import annotations

import base64
import json

import pytest

from pyk3s.agent.cri.client import pb
from pyk3s.agent.cri.spec import (
    LABEL_POD_UID,
    container_config,
    dns_config,
    linux_resources,
    pull_auth,
    quantity,
    sandbox_config,
)

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "annotations": {"a": "b"}},
       "spec": {"securityContext": {"runAsUser": 1000, "fsGroup": 2000, "sysctls": [{"name": "net.x", "value": "1"}]},
                "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}


@pytest.mark.parametrize(("text", "value"), [("128Mi", 134217728), ("250m", 0.25), ("1.5", 1.5), ("1e3", 1000),
                                             ("2k", 2000), ("1Gi", 2**30)])
def test_quantity(text: str, value: float) -> None:
    assert float(quantity(text)) == value


def test_resources_follow_the_kubelet_mapping() -> None:
    r = linux_resources({"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "64Mi"}}})
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes) == (256, 100000, 100000, 64 * 2**20)
    best_effort = linux_resources({})
    assert best_effort.cpu_shares == 2 and best_effort.memory_limit_in_bytes == 0 and best_effort.cpu_quota == 0


def test_dns_config_from_the_pods_resolv_conf() -> None:
    d = dns_config("nameserver 10.43.0.10\nsearch ns.svc.cluster.local svc.cluster.local\noptions ndots:5\n")
    assert list(d.servers) == ["10.43.0.10"] and list(d.searches)[0] == "ns.svc.cluster.local"
    assert list(d.options) == ["ndots:5"]


def test_sandbox_config() -> None:
    cfg = sandbox_config(POD, hostname="p", log_dir="/logs/u-1", resolv_conf="nameserver 1.1.1.1\n", node="n1")
    assert cfg.metadata.uid == "u-1" and cfg.hostname == "p" and cfg.labels[LABEL_POD_UID] == "u-1"
    assert cfg.linux.security_context.run_as_user.value == 1000
    assert list(cfg.linux.security_context.supplemental_groups) == [2000]
    assert dict(cfg.linux.sysctls) == {"net.x": "1"}
    assert cfg.port_mappings[0].host_port == 8080 and cfg.port_mappings[0].protocol == pb.TCP
    assert cfg.linux.security_context.namespace_options.network == pb.POD
    host = sandbox_config({**POD, "spec": {**POD["spec"], "hostNetwork": True}}, hostname=None, log_dir="/l",
                          resolv_conf="", node="n1")
    assert host.linux.security_context.namespace_options.network == pb.NODE and not host.HasField("dns_config")


def test_container_config() -> None:
    c = {"name": "c", "image": "x", "command": ["sh"], "args": ["-c", "true"], "workingDir": "/w", "tty": True,
         "securityContext": {"runAsUser": 5, "privileged": True, "readOnlyRootFilesystem": True,
                             "allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_ADMIN"]}},
         "resources": {"limits": {"memory": "1Mi"}}}
    cfg = container_config(POD, c, image="sha256:abc", attempt=2, env={"A": "1"},
                           mounts=[{"source": "/h", "target": "/c", "readOnly": True}], log_path="c/2.log")
    assert cfg.image.image == "sha256:abc" and cfg.metadata.attempt == 2 and cfg.log_path == "c/2.log"
    assert list(cfg.command) == ["sh"] and list(cfg.args) == ["-c", "true"] and cfg.working_dir == "/w"
    assert [(e.key, e.value) for e in cfg.envs] == [("A", "1")]
    assert (cfg.mounts[0].host_path, cfg.mounts[0].container_path, cfg.mounts[0].readonly) == ("/h", "/c", True)
    sc = cfg.linux.security_context
    assert sc.run_as_user.value == 5 and sc.privileged and sc.readonly_rootfs and sc.no_new_privs
    assert list(sc.capabilities.add_capabilities) == ["NET_ADMIN"]
    assert cfg.linux.resources.memory_limit_in_bytes == 2**20 and cfg.tty


def test_pull_auth_picks_the_secret_for_the_images_registry() -> None:
    def secret(auths: dict) -> dict:
        raw = base64.b64encode(json.dumps({"auths": auths}).encode()).decode()
        return {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": raw}}
    other = secret({"other.example": {"username": "o", "password": "o"}})
    mine = secret({"https://reg.example:5000": {"auth": base64.b64encode(b"me:pw").decode()}})
    auth = pull_auth("reg.example:5000/app:1", [other, mine])
    assert (auth.username, auth.password, auth.server_address) == ("me", "pw", "reg.example:5000")
    assert pull_auth("nginx", [other, mine]) is None
