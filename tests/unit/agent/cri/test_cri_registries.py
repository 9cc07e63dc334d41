"""registries.yaml (K3s's schema) -> containerd hosts.toml files, auth tables and kubelet rewrites."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyk3s.agent.cri.registries import (
    RegistryError,
    auth_toml,
    hosts_files,
    load_registries,
    parse_registries,
    rewrite_image,
    split_reference,
)

DOC = {
    "mirrors": {
        "docker.io": {"endpoint": ["https://mirror.example:5000", "registry.example"],
                      "rewrite": {"^rancher/(.*)": "mirrored/rancher/$1"}},
        "*": {"endpoint": ["http://127.0.0.1:5000"]},
    },
    "configs": {
        "mirror.example:5000": {"auth": {"username": "u", "password": "p\"w"},
                                "tls": {"ca_file": "/ca.pem", "cert_file": "/c.pem", "key_file": "/k.pem"}},
        "other.example": {"tls": {"insecure_skip_verify": True}},
    },
}


def test_hosts_files_list_endpoints_in_order_with_tls_and_the_default_last() -> None:
    files = hosts_files(parse_registries(DOC))
    docker = files["docker.io"]
    assert docker.startswith('server = "https://registry-1.docker.io"')
    assert docker.index('[host."https://mirror.example:5000"]') < docker.index('[host."https://registry.example"]')
    assert 'ca = "/ca.pem"' in docker and 'client = [["/c.pem", "/k.pem"]]' in docker
    assert "server" not in files["_default"] and '[host."http://127.0.0.1:5000"]' in files["_default"]
    # a registry named only under configs gets a hosts.toml of its own for its TLS settings
    assert "skip_verify = true" in files["other.example"]


def test_disabled_default_endpoint_makes_the_first_mirror_the_server() -> None:
    files = hosts_files(parse_registries(DOC), disable_default_endpoint=True)
    assert files["docker.io"].startswith('server = "https://mirror.example:5000"')
    assert files["_default"].startswith('server = "http://127.0.0.1:5000"')


def test_auth_is_a_cri_registry_config_table_with_escaped_values() -> None:
    text = auth_toml(parse_registries(DOC))
    assert '[plugins."io.containerd.grpc.v1.cri".registry.configs."mirror.example:5000".auth]' in text
    assert 'password = "p\\"w"' in text and 'username = "u"' in text
    assert "other.example" not in text


@pytest.mark.parametrize(("image", "want"), [
    ("nginx", ("docker.io", "library/nginx", ":latest")),
    ("rancher/klipper-lb:v0.4", ("docker.io", "rancher/klipper-lb", ":v0.4")),
    ("127.0.0.1:5000/app@sha256:ab", ("127.0.0.1:5000", "app", "@sha256:ab")),
    ("localhost/x/y:1", ("localhost", "x/y", ":1")),
])
def test_split_reference(image: str, want: tuple[str, str, str]) -> None:
    assert split_reference(image) == want


def test_rewrite_applies_the_registry_rule_to_the_repository() -> None:
    cfg = parse_registries(DOC)
    assert rewrite_image("rancher/klipper-lb:v0.4", cfg) == "docker.io/mirrored/rancher/klipper-lb:v0.4"
    assert rewrite_image("nginx:1", cfg) == "nginx:1"
    assert rewrite_image("quay.io/x:1", cfg) == "quay.io/x:1"  # the "*" mirror has no rewrite


def test_bad_files_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="mirrors.docker.io.endpoint"):
        parse_registries({"mirrors": {"docker.io": {"endpoint": "not-a-list"}}})
    with pytest.raises(RegistryError, match="bad regexp"):
        parse_registries({"mirrors": {"docker.io": {"rewrite": {"(": "x"}}}})
    bad = tmp_path / "registries.yaml"
    bad.write_text("mirrors: [\n")
    with pytest.raises(RegistryError, match="not valid YAML"):
        load_registries(bad)
    assert load_registries(tmp_path / "missing.yaml").mirrors == {}
