"""ServerConfig hands each part its settings from one set of flags, with no field copied elsewhere."""

from __future__ import annotations

from pathlib import Path

from pyk3s.cli.flag_tables import SERVER_FLAGS
from pyk3s.cli.flags import parse_flags
from pyk3s.controllers.common.settings import KLIPPER_LB_IMAGE
from pyk3s.server.config import ServerConfig
from pyk3s.server.controlplane import enabled_controllers


def config(tmp_path: Path, *argv: str) -> ServerConfig:
    args = ["--config", str(tmp_path / "none.yaml"), "--data-dir", str(tmp_path), *argv]
    return ServerConfig.from_flags(parse_flags("pyk3s server", "", SERVER_FLAGS, args, environ={}).values)


def test_api_settings_follow_the_flags(tmp_path: Path) -> None:
    cfg = config(tmp_path, "--https-listen-port", "7443", "--node-name", "n1", "--node-ip", "192.0.2.7",
                 "--service-cidr", "10.96.0.0/12", "--cluster-domain", "example.local", "--tls-san", "a.example")
    api = cfg.api_settings()
    assert (api.data_dir, api.https_port, api.advertise_port) == (tmp_path, 7443, 7443)
    assert api.advertise_address == "192.0.2.7"  # --node-ip when no --advertise-address
    assert api.node_name == "n1" and api.tls_sans == ("a.example",)
    assert api.service_cidrs == ("10.96.0.0/12",) and api.cluster_dns == "10.96.0.10"
    assert api.cluster_domain == "example.local" and api.node_port_range == (30000, 32767)


def test_manifests_and_controller_settings(tmp_path: Path) -> None:
    cfg = config(tmp_path, "--disable", "traefik", "--system-default-registry", "registry.example:5000/",
                 "--manifests-rescan-interval", "5", "--servicelb-namespace", "lb", "--pod-eviction-timeout", "30")
    stage = cfg.stage_settings()
    assert stage.server_dir == tmp_path / "server" and stage.disable == {"traefik"}
    assert stage.system_default_registry == "registry.example:5000/" and stage.cluster_dns == ("10.43.0.10",)
    ctl = cfg.controller_settings()
    assert ctl.deploy is not None and ctl.deploy.manifests_dir == tmp_path / "server" / "manifests"
    assert ctl.deploy.rescan_interval == 5.0 and ctl.deploy.disable == {"traefik"}
    assert ctl.servicelb.namespace == "lb" and ctl.servicelb.image == f"registry.example:5000/{KLIPPER_LB_IMAGE}"
    assert ctl.toleration_seconds_cap == 30.0 and ctl.cluster_cidrs == ("10.42.0.0/16",)
    assert config(tmp_path).servicelb_settings().image == KLIPPER_LB_IMAGE


def test_embedded_agent_settings(tmp_path: Path) -> None:
    cfg = config(tmp_path, "--node-name", "n1", "--node-label", "a=b", "--bridge-name", "pkb1",
                 "--cluster-cidr", "10.244.0.0/16,fd00:42::/56", "--service-cidr", "10.96.0.0/12,fd00:43::/112")
    agent = cfg.agent_settings()
    assert agent.is_server and agent.node_name == "n1" and agent.node_labels == ("a=b",)
    assert agent.bridge_name == "pkb1" and agent.data_dir == tmp_path
    assert agent.cluster_cidrs == ("10.244.0.0/16", "fd00:42::/56")
    assert agent.cluster_dns == ("10.96.0.10", "fd00:43::a")


def test_enabled_controllers_follow_the_disable_flags(tmp_path: Path) -> None:
    names = enabled_controllers(config(tmp_path))
    assert {"servicelb", "deploy", "scheduler", "nodehosts"} <= names
    names = enabled_controllers(config(tmp_path, "--disable", "servicelb,coredns", "--disable-scheduler"))
    assert "servicelb" not in names and "scheduler" not in names and {"deploy", "nodehosts"} <= names
    assert "servicelb" not in enabled_controllers(config(tmp_path, "--disable-cloud-controller"))
