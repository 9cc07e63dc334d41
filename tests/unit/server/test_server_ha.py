"""What servers sharing a datastore agree on, without a datastore: the sealed bootstrap data and the
critical configuration values (checked on the in-process API over the memory store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.cli.flag_tables import SERVER_FLAGS
from pyk3s.cli.flags import parse_flags
from pyk3s.client import Client
from pyk3s.client.leader import micro_time
from pyk3s.k3s.network import ClusterNetwork
from pyk3s.server.config import ServerConfig, ServerConfigError
from pyk3s.server.ha import check_critical_config, critical_values, seal, unseal


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


def test_critical_values_hold_the_flannel_settings(tmp_path: Path) -> None:
    values = critical_values(_config(tmp_path, "--flannel-backend", "host-gw", "--flannel-external-ip"))
    assert values["flannel-backend"] == "host-gw"
    assert values["flannel-external-ip"] == "true" and values["flannel-ipv6-masq"] == "false"
    assert critical_values(_config(tmp_path))["flannel-backend"] == "vxlan"


def _config(tmp_path: Path, *argv: str) -> ServerConfig:
    args = ["--config", str(tmp_path / "none.yaml"), "--data-dir", str(tmp_path), "--node-name", "pk-a",
            "--datastore-endpoint", "http://127.0.0.1:2379", *argv]
    return ServerConfig.from_flags(parse_flags("pyk3s server", "", SERVER_FLAGS, args, environ={}).values)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, ApiConfig())
    await api.start()
    try:
        yield Client.in_process(api)
    finally:
        await api.stop()
        await store.close()


async def _another_server_is_live(client: Client) -> None:
    await client.resource("coordination.k8s.io/v1", "leases").create({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "pyk3s-apiserver-pk-b-1", "namespace": "kube-system",
                     "labels": {"pyk3s.io/apiserver": "true"}},
        "spec": {"holderIdentity": "192.0.2.2:6443", "leaseDurationSeconds": 15, "renewTime": micro_time()}},
        "kube-system")


@pytest.mark.parametrize(("first", "second", "flag"), [
    (("--flannel-backend", "host-gw"), ("--flannel-backend", "vxlan"), "--flannel-backend"),
    ((), ("--flannel-external-ip",), "--flannel-external-ip"),
    ((), ("--flannel-ipv6-masq",), "--flannel-ipv6-masq"),
])
async def test_a_server_with_other_flannel_settings_is_refused(client: Client, tmp_path: Path,
                                                                first: tuple[str, ...], second: tuple[str, ...],
                                                                flag: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    await check_critical_config(client, _config(tmp_path / "a", *first))
    await _another_server_is_live(client)
    for d in ("a", "b"):
        (tmp_path / d / "server").mkdir(exist_ok=True)
    with pytest.raises(ServerConfigError, match=f"critical configuration value mismatch: {flag} is"):
        await check_critical_config(client, _config(tmp_path / "b", *second))
    # the same settings are accepted
    await check_critical_config(client, _config(tmp_path / "b", *first))


async def test_without_a_live_server_the_new_settings_are_recorded(client: Client, tmp_path: Path) -> None:
    (tmp_path / "server").mkdir(parents=True)
    await check_critical_config(client, _config(tmp_path, "--flannel-backend", "host-gw"))
    await check_critical_config(client, _config(tmp_path, "--flannel-backend", "none"))
    cm = await client.resource("v1", "configmaps").get("pyk3s-critical-config", "kube-system")
    assert cm["data"]["flannel-backend"] == "none"
