from pyk3s.agent.kubelet.dnsfiles import hosts_file, node_resolv_conf, pod_resolv_conf

POD = {"metadata": {"name": "p", "namespace": "team"}, "spec": {}}


def test_cluster_first():
    text = pod_resolv_conf(POD, ["10.43.0.10"], "cluster.local", "nameserver 192.0.2.53\nsearch corp.example\n")
    assert text == ("nameserver 10.43.0.10\nsearch team.svc.cluster.local svc.cluster.local cluster.local "
                    "corp.example\noptions ndots:5\n")


def test_default_policy_and_dns_config_merge():
    pod = {"metadata": {"name": "p", "namespace": "team"},
           "spec": {"dnsPolicy": "Default", "dnsConfig": {"nameservers": ["192.0.2.9"], "searches": ["x.example"],
                                                          "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}}
    text = pod_resolv_conf(pod, ["10.43.0.10"], "cluster.local", "nameserver 192.0.2.53\noptions timeout:1\n")
    assert text == "nameserver 192.0.2.53\nnameserver 192.0.2.9\nsearch x.example\noptions timeout:1 ndots:2 edns0\n"


def test_host_network_cluster_first_falls_back_to_default():
    pod = {"metadata": {"name": "p", "namespace": "team"}, "spec": {"hostNetwork": True}}
    assert pod_resolv_conf(pod, ["10.43.0.10"], "cluster.local", "nameserver 192.0.2.53\n") == "nameserver 192.0.2.53\n"


def test_node_resolv_conf_loopback_only_is_replaced(tmp_path):
    local = tmp_path / "resolv.conf"
    local.write_text("nameserver 127.0.0.53\n")
    got = node_resolv_conf("", tmp_path / "agent", candidates=(str(local),))
    assert got == tmp_path / "agent" / "etc" / "resolv.conf"
    assert "8.8.8.8" in got.read_text()
    assert node_resolv_conf("/custom", tmp_path) == type(got)("/custom")


def test_hosts_file():
    text = hosts_file({"metadata": {"name": "web-0", "namespace": "ns"},
                       "spec": {"hostAliases": [{"ip": "192.0.2.7", "hostnames": ["a", "b"]}]}}, ["10.42.0.5"])
    assert "10.42.0.5\tweb-0" in text and "192.0.2.7\ta\tb" in text
