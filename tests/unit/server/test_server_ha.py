"""What servers sharing a datastore agree on, without a datastore: the sealed bootstrap data and the
critical configuration values."""

from __future__ import annotations

import pytest

from pyk3s.k3s.network import ClusterNetwork
from pyk3s.server.config import ServerConfigError
from pyk3s.server.ha import critical_values, seal, unseal


def test_bootstrap_data_needs_the_same_token() -> None:
    blob = seal({"server-ca.key": b"secret"}, "pw1")
    assert b"secret" not in blob
    assert unseal(blob, "pw1") == {"server-ca.key": b"secret"}
    with pytest.raises(ServerConfigError, match="--token does not match"):
        unseal(blob, "pw2")


def test_critical_values_hold_servicelb_disabled() -> None:
    from types import SimpleNamespace

    cfg = SimpleNamespace(network=ClusterNetwork(), disable=frozenset({"traefik", "coredns"}),
                          disable_cloud_controller=False, servicelb_namespace="kube-system",
                          node=SimpleNamespace(disable_network_policy=False))
    assert critical_values(cfg)["disable-servicelb"] == "false"  # type: ignore[arg-type]
