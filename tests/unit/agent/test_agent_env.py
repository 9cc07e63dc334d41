import base64

import pytest

from pyk3s.agent.kubelet.env import EnvError, build_env

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
       "spec": {"nodeName": "n1", "serviceAccountName": "sa"}}
SERVICES = [
    {"metadata": {"namespace": "default", "name": "kubernetes"},
     "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}},
    {"metadata": {"namespace": "ns", "name": "my-svc"},
     "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
    {"metadata": {"namespace": "other", "name": "far"}, "spec": {"clusterIP": "10.43.0.21", "ports": [{"port": 1}]}},
]


def env_for(container, **kw):
    return build_env(POD, container, config_maps=kw.get("cms", {}), secrets=kw.get("secrets", {}),
                     services=SERVICES, pod_ip="10.42.0.5", host_ip="192.0.2.2")


def test_values_refs_and_links():
    c = {"name": "c", "env": [
        {"name": "A", "value": "1"}, {"name": "B", "value": "$(A)-x-$$(A)"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
        {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}}],
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "P_"}]}
    env = env_for(c, cms={"cm": {"data": {"k": "v"}}}, secrets={"s": {"data": {"pw": base64.b64encode(b"hunter2").decode()}}})
    assert env["B"] == "1-x-$(A)" and env["POD"] == "p" and env["IP"] == "10.42.0.5" and env["APP"] == "x"
    assert env["CM"] == "v" and env["P_k"] == "v" and env["S"] == "hunter2"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["MY_SVC_SERVICE_HOST"] == "10.43.0.20" and env["MY_SVC_PORT_80_TCP_ADDR"] == "10.43.0.20"
    assert "FAR_SERVICE_HOST" not in env and env["HOSTNAME"] == "p"


def test_missing_reference_names_it():
    with pytest.raises(EnvError, match='^configmap "nope" not found$'):
        env_for({"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]})
    with pytest.raises(EnvError, match='^secret "s" not found$'):
        env_for({"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]})
    with pytest.raises(EnvError, match="^couldn't find key k in ConfigMap ns/cm$"):
        env_for({"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]},
                cms={"cm": {"data": {}}})
    env = env_for({"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {
        "name": "nope", "key": "k", "optional": True}}}]})
    assert "X" not in env


def test_pod_and_host_ips_are_every_address_joined_by_commas():
    refs = {"IP": "status.podIP", "IPS": "status.podIPs", "HOST": "status.hostIP", "HOSTS": "status.hostIPs",
            "GRACE": "spec.terminationGracePeriodSeconds"}
    c = {"name": "c", "env": [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in refs.items()]}
    env = build_env(POD, c, config_maps={}, secrets={}, services=SERVICES, pod_ip="10.42.0.5", host_ip="192.0.2.2",
                    pod_ips=("10.42.0.5", "fd00:42::5"), host_ips=("192.0.2.2", "2001:db8::2"))
    assert env["IP"] == "10.42.0.5" and env["IPS"] == "10.42.0.5,fd00:42::5"
    assert env["HOST"] == "192.0.2.2" and env["HOSTS"] == "192.0.2.2,2001:db8::2" and env["GRACE"] == "30"
    single = env_for(c)
    assert single["IPS"] == "10.42.0.5" and single["HOSTS"] == "192.0.2.2"
