import pytest

from pyk3s.controllers.common.settings import ServiceLBSettings
from pyk3s.controllers.servicelb.desired import (
    ServiceError,
    daemonset_name,
    desired_daemonset,
    source_ranges,
    wants_load_balancer,
)

UID = "35a5ccb3-4a82-40b7-8d83-cda9582e4251"


def svc(name: str = "web", **spec: object) -> dict:
    base = {"type": "LoadBalancer", "clusterIP": "10.43.0.50", "clusterIPs": ["10.43.0.50"],
            "ipFamilies": ["IPv4"], "ports": [{"name": "http", "port": 8000, "protocol": "TCP", "targetPort": 8888,
                                               "nodePort": 31000}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": UID}, "spec": base}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a-service", "svclb-a-service-35a5ccb3"),
        ("a-service-with-a-very-veeeeeery-long-yet-valid-name", "svclb-a-service-with-a-very-veeeeeery-long-yet-valid-n-35a5ccb3"),
        ("a-service-with-a-name-with-inconvenient------------hypens", "svclb-a-service-with-a-name-with-inconvenient-35a5ccb3"),
    ],
)
def test_daemonset_name_vectors_from_k3s(name: str, expected: str) -> None:
    assert daemonset_name(svc(name)) == expected


def test_only_loadbalancer_without_class() -> None:
    assert wants_load_balancer(svc())
    assert not wants_load_balancer(svc(type="ClusterIP"))
    assert not wants_load_balancer(svc(loadBalancerClass="metallb"))


def test_daemonset_shape_cluster_policy() -> None:
    ds = desired_daemonset(svc(), [], ServiceLBSettings())
    assert ds["metadata"]["namespace"] == "kube-system"
    assert ds["metadata"]["labels"] == {
        "svccontroller.k3s.cattle.io/nodeselector": "false",
        "svccontroller.k3s.cattle.io/svcname": "web",
        "svccontroller.k3s.cattle.io/svcnamespace": "default",
    }
    pod = ds["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "svclb"
    assert pod["automountServiceAccountToken"] is False
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["securityContext"]["sysctls"] == [{"name": "net.ipv4.ip_forward", "value": "1"}]
    assert [t["key"] for t in pod["tolerations"]] == ["node-role.kubernetes.io/control-plane", "CriticalAddonsOnly"]
    (c,) = pod["containers"]
    assert c["name"] == "lb-tcp-8000"
    assert c["ports"] == [{"name": "lb-tcp-8000", "containerPort": 8000, "hostPort": 8000, "protocol": "TCP"}]
    assert [(e["name"], e.get("value")) for e in c["env"]] == [
        ("SRC_PORT", "8000"), ("SRC_RANGES", "0.0.0.0/0"), ("DEST_PROTO", "TCP"),
        ("DEST_PORT", "8000"), ("DEST_IPS", "10.43.0.50"),
    ]
    assert "nodeSelector" not in pod


def test_local_policy_uses_node_port_and_host_ips() -> None:
    ds = desired_daemonset(svc(externalTrafficPolicy="Local"), [], ServiceLBSettings())
    env = {e["name"]: e for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DEST_PORT"]["value"] == "31000"
    assert env["DEST_IPS"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIPs"}}


def test_tcp_and_udp_on_one_number_are_two_containers() -> None:
    s = svc(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}])
    names = [c["name"] for c in desired_daemonset(s, [], ServiceLBSettings())["spec"]["template"]["spec"]["containers"]]
    assert names == ["lb-udp-53", "lb-tcp-53"]


def test_allow_list_mode_and_pools() -> None:
    nodes = [{"metadata": {"name": "a", "labels": {"svccontroller.k3s.cattle.io/enablelb": "false"}}}]
    s = svc()
    s["metadata"]["labels"] = {"svccontroller.k3s.cattle.io/lbpool": "pool1"}
    ds = desired_daemonset(s, nodes, ServiceLBSettings())
    assert ds["metadata"]["labels"]["svccontroller.k3s.cattle.io/nodeselector"] == "true"
    assert ds["spec"]["template"]["spec"]["nodeSelector"] == {
        "svccontroller.k3s.cattle.io/enablelb": "true", "svccontroller.k3s.cattle.io/lbpool": "pool1"}
    # without allow-list mode the pool label is ignored
    assert "nodeSelector" not in desired_daemonset(s, [], ServiceLBSettings())["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("spec", "annotations", "expected"),
    [
        ({}, {}, "0.0.0.0/0"),
        ({"ipFamilies": ["IPv4", "IPv6"]}, {}, "0.0.0.0/0,::/0"),
        ({"loadBalancerSourceRanges": ["10.1.2.3/8", "10.0.0.0/8", "192.168.0.0/16"]}, {}, "10.0.0.0/8,192.168.0.0/16"),
        ({}, {"service.beta.kubernetes.io/load-balancer-source-ranges": "172.16.0.0/12, 127.0.0.1/32"},
         "172.16.0.0/12,127.0.0.1/32"),
    ],
)
def test_source_ranges(spec: dict, annotations: dict, expected: str) -> None:
    s = svc(**spec)
    s["metadata"]["annotations"] = annotations
    assert source_ranges(s) == expected


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"ports": [{"port": 70000, "protocol": "TCP"}]}, "spec.ports[0].port"),
        ({"ports": [{"port": 80, "protocol": "SCTP"}]}, "spec.ports[0].protocol"),
        ({"loadBalancerSourceRanges": ["not-a-cidr"]}, "spec.loadBalancerSourceRanges"),
    ],
)
def test_bad_services_name_the_field(change: dict, fragment: str) -> None:
    with pytest.raises(ServiceError) as err:
        desired_daemonset(svc(**change), [], ServiceLBSettings())
    assert fragment in str(err.value)


def test_tolerations_annotation() -> None:
    s = svc()
    s["metadata"]["annotations"] = {"svccontroller.k3s.cattle.io/tolerations": '[{"key": "dedicated", "value": "lb"}]'}
    tol = desired_daemonset(s, [], ServiceLBSettings())["spec"]["template"]["spec"]["tolerations"]
    assert tol[-1] == {"key": "dedicated", "value": "lb", "operator": "Equal"}
    s["metadata"]["annotations"] = {"svccontroller.k3s.cattle.io/tolerations": '[{"operator": "Equal"}]'}
    with pytest.raises(ServiceError, match="empty key must have operator 'Exists'"):
        desired_daemonset(s, [], ServiceLBSettings())
