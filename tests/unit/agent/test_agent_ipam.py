from pyk3s.agent.cni.ipam import HostLocalIpam


def test_allocate_release_persist(tmp_path):
    ipam = HostLocalIpam(tmp_path, "10.42.3.0/24")
    a = ipam.allocate("uid-a")
    b = ipam.allocate("uid-b")
    assert a == "10.42.3.2" and b == "10.42.3.3"
    assert ipam.allocate("uid-a") == a
    assert ipam.release("uid-a") == a
    again = HostLocalIpam(tmp_path, "10.42.3.0/24")   # survives a restart
    assert again.lookup("uid-b") == b
    assert again.allocate("uid-c") == "10.42.3.4"     # round-robin past the freed one


def test_exhaustion(tmp_path):
    ipam = HostLocalIpam(tmp_path, "10.42.3.0/30")
    assert ipam.allocate("x") == "10.42.3.2"
    try:
        ipam.allocate("y")
    except RuntimeError as exc:
        assert "no free address" in str(exc)
    else:
        raise AssertionError("expected exhaustion")


def test_dual_stack_pods_get_one_address_per_family_and_release_both(tmp_path) -> None:
    from pyk3s.agent.cni.ipam import HostLocalIpam

    ipam = HostLocalIpam(tmp_path, "10.42.0.0/24", ("fd42::/64",))
    assert ipam.allocate_all("pod-a") == ["10.42.0.2", "fd42::2"]
    assert ipam.allocate_all("pod-b") == ["10.42.0.3", "fd42::3"]
    assert ipam.allocate_all("pod-a") == ["10.42.0.2", "fd42::2"]      # idempotent
    assert ipam.lookup("pod-b") == "10.42.0.3"
    assert ipam.release("pod-a") == "10.42.0.2"
    assert sorted(ipam.owners()) == ["10.42.0.3", "fd42::3"]
