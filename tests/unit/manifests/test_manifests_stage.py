import hashlib
import stat
from pathlib import Path

import pytest

from pyk3s.manifests.stage import StageSettings, is_disabled, render, stage, staged_checksums


def test_render_substitutes_k3s_template_variables() -> None:
    s = StageSettings(server_dir=Path("/x"), cluster_dns=("10.43.0.10",), system_default_registry="reg.local:5000")
    text = b"%{CLUSTER_DNS}% %{CLUSTER_DNS_LIST}% %{CLUSTER_DOMAIN}% %{SYSTEM_DEFAULT_REGISTRY}%img %{CLUSTER_DNS_IPFAMILYPOLICY}%"
    assert render(text, s) == b"10.43.0.10 [10.43.0.10] cluster.local reg.local:5000/img SingleStack"
    dual = StageSettings(server_dir=Path("/x"), cluster_dns=("10.43.0.10", "fd00:43::a"))
    assert render(b"%{CLUSTER_DNS_LIST}% %{CLUSTER_DNS_IPFAMILYPOLICY}%", dual) == b"[10.43.0.10,fd00:43::a] RequireDualStack"
    assert render(b"%{SYSTEM_DEFAULT_REGISTRY}%img", StageSettings(server_dir=Path("/x"))) == b"img"


@pytest.mark.parametrize(
    ("rel", "disable", "expected"),
    [
        ("coredns.yaml", {"coredns"}, True),
        ("coredns.yaml", {"coredns.yaml"}, True),
        ("traefik.yaml", {"coredns"}, False),
        ("metrics-server/svc.yaml", {"metrics-server"}, True),
        ("traefik-config.yaml", {"traefik"}, False),
    ],
)
def test_is_disabled(rel: str, disable: set[str], expected: bool) -> None:
    assert is_disabled(rel, frozenset(disable)) is expected


def test_stage_writes_private_files_overwrites_edits_and_records_checksums(tmp_path: Path) -> None:
    s = StageSettings(server_dir=tmp_path / "server")
    record = stage(s)
    assert record, "the package ships manifests"
    mdir = s.manifests_dir
    assert stat.S_IMODE(mdir.stat().st_mode) == 0o700
    name = next(iter(record))
    path = mdir / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("edited")
    stage(s)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record[name]
    assert staged_checksums(s.server_dir) == record


def test_disabled_files_are_not_staged_but_stay_recorded(tmp_path: Path) -> None:
    s = StageSettings(server_dir=tmp_path / "server")
    first = stage(s)
    name = next(iter(first))
    (s.manifests_dir / name).unlink()
    again = stage(StageSettings(server_dir=tmp_path / "server", disable=frozenset({name})))
    assert not (s.manifests_dir / name).exists()
    assert again[name] == first[name]


def test_forget_staged_drops_one_entry(tmp_path: Path) -> None:
    from pyk3s.manifests.stage import forget_staged

    s = StageSettings(server_dir=tmp_path / "server")
    record = stage(s)
    name = next(iter(record))
    forget_staged(s.server_dir, name)
    forget_staged(s.server_dir, "never-staged.yaml")
    assert staged_checksums(s.server_dir) == {k: v for k, v in record.items() if k != name}


def test_disable_values_are_comma_separated_and_repeatable(tmp_path: Path) -> None:
    from pyk3s.cli.flag_tables import SERVER_FLAGS
    from pyk3s.cli.flags import parse_flags
    from pyk3s.server.config import ServerConfig

    argv = ["--data-dir", str(tmp_path), "--config", str(tmp_path / "none.yaml"),
            "--disable", "traefik, servicelb", "--disable", "coredns"]
    cfg = ServerConfig.from_flags(parse_flags("pyk3s server", "", SERVER_FLAGS, argv, environ={}).values)
    assert cfg.disable == frozenset({"traefik", "servicelb", "coredns"})
