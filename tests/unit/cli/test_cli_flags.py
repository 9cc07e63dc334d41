from pathlib import Path

import pytest

from pyk3s.cli.flag_tables import SERVER_FLAGS
from pyk3s.cli.flags import parse_flags
from pyk3s.server.config import ServerConfig, ServerConfigError


def parse(argv: list[str], env: dict[str, str] | None = None, config: Path | None = None) -> ServerConfig:
    args = list(argv)
    if config is not None:
        args = ["--config", str(config), *args]
    else:
        args = ["--config", "/nonexistent/pyk3s-config.yaml", *args]
    return ServerConfig.from_flags(parse_flags("pyk3s server", "", SERVER_FLAGS, args, environ=env or {}).values)


def test_defaults_follow_k3s() -> None:
    cfg = parse(["--data-dir", "/tmp/x"])
    assert cfg.https_port == 6443
    assert cfg.network.cluster_cidrs == ("10.42.0.0/16",)
    assert cfg.network.service_cidrs == ("10.43.0.0/16",)
    assert cfg.network.cluster_dns == ("10.43.0.10",)
    assert cfg.network.cluster_domain == "cluster.local"
    assert cfg.node_port_range == (30000, 32767)
    assert cfg.write_kubeconfig_mode == 0o600
    assert cfg.servicelb_enabled


def test_cluster_dns_defaults_to_tenth_address_of_each_service_cidr() -> None:
    cfg = parse(["--service-cidr", "10.96.0.0/12,fd00:43::/112", "--cluster-cidr", "10.244.0.0/16,fd00:42::/56"])
    assert cfg.network.cluster_dns == ("10.96.0.10", "fd00:43::a")


def test_env_k3s_and_pyk3s_spellings_pyk3s_wins() -> None:
    assert parse([], {"K3S_NODE_NAME": "from-k3s"}).node.name == "from-k3s"
    assert parse([], {"K3S_NODE_NAME": "a", "PYK3S_NODE_NAME": "b"}).node.name == "b"
    assert parse(["--node-name", "cli"], {"K3S_NODE_NAME": "env"}).node.name == "cli"


def test_config_file_and_dropins_precedence(tmp_path: Path) -> None:
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text("node-name: from-file\ndisable: [traefik]\ncluster-domain: file.local\ntls-san: [a.example]\n")
    dropins = tmp_path / "config.yaml.d"
    dropins.mkdir()
    (dropins / "10-more.yaml").write_text("disable+: [servicelb]\ncluster-domain: dropin.local\n")
    (dropins / "20-ignored.txt").write_text("node-name: nope\n")
    cfg = parse([], {"K3S_NODE_NAME": "env"}, cfg_file)
    assert cfg.node.name == "from-file"  # file beats env
    assert cfg.disable == {"traefik", "servicelb"}  # key+ appends
    assert cfg.network.cluster_domain == "dropin.local"  # later files override
    cli = parse(["--node-name", "cli", "--disable", "coredns"], {}, cfg_file)
    assert cli.node.name == "cli"  # command line beats file for scalars
    assert cli.disable == {"traefik", "servicelb", "coredns"}  # list flags collect both


def test_unknown_config_keys_are_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text("no-such-flag: 1\nnode-name: n1\n")
    assert parse([], {}, cfg_file).node.name == "n1"
    assert "Unknown flag no-such-flag" in caplog.text


def test_disable_is_repeatable_and_comma_separated() -> None:
    cfg = parse(["--disable", "traefik, servicelb", "--disable=coredns"])
    assert cfg.disable == {"traefik", "servicelb", "coredns"}
    assert not cfg.servicelb_enabled


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cluster-cidr", "10.42.0.0/33"], "invalid cluster-cidr 10.42.0.0/33"),
        (["--service-cidr", "nope"], "invalid service-cidr nope"),
        (["--service-node-port-range", "30000"], "invalid port range 30000"),
        (["--service-node-port-range", "40000-30000"], "invalid port range 40000-30000"),
        (["--cluster-dns", "10.99.0.10"], "--cluster-dns 10.99.0.10 is not inside --service-cidr"),
        (["--cluster-cidr", "10.43.0.0/16"], "--cluster-cidr 10.43.0.0/16 overlaps --service-cidr"),
        (["--write-kubeconfig-mode", "rw"], "invalid --write-kubeconfig-mode"),
        (["--token-file", "/nonexistent/token"], "--token-file /nonexistent/token"),
    ],
)
def test_bad_values_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ServerConfigError) as err:
        parse(argv)
    assert message in str(err.value)


def test_token_file_and_kubeconfig_mode(tmp_path: Path) -> None:
    tok = tmp_path / "token"
    tok.write_text("secret\n")
    cfg = parse(["--token-file", str(tok), "--write-kubeconfig-mode", "0644"])
    assert cfg.token == "secret"
    assert cfg.write_kubeconfig_mode == 0o644
