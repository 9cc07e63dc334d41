from pathlib import Path

import pytest

from pyk3s.controllers.deploy.scan import addon_name, scan


def make(root: Path, *names: str) -> None:
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")


@pytest.mark.parametrize(
    ("filename", "addon"),
    [("traefik.yaml", "traefik"), ("traefik-config.yaml", "traefik-config"), ("foo.bar.yaml", "foo")],
)
def test_addon_name_is_up_to_first_dot(filename: str, addon: str) -> None:
    assert addon_name(filename) == addon


def test_sorted_order_and_ignored_files(tmp_path: Path) -> None:
    make(tmp_path, "b.yaml", "a.yml", "c.JSON", ".hidden.yaml", "notes.txt", "sub/d.yaml")
    got = [(m.rel, m.action) for m in scan(tmp_path)]
    assert got == [("a.yml", "apply"), ("b.yaml", "apply"), ("c.JSON", "apply"), ("sub/d.yaml", "apply")]


# Appendix B of specs/k3s.md: the disable/skip matching matrix.
@pytest.mark.parametrize(
    ("rel", "disable", "skip", "action"),
    [
        ("traefik.yaml", {"traefik"}, False, "disabled"),
        ("traefik.yml", {"traefik"}, False, "disabled"),
        ("traefik.JSON", {"traefik"}, False, "disabled"),
        ("traefik-config.yaml", {"traefik"}, False, "apply"),
        ("traefik.custom.yaml", {"traefik"}, False, "apply"),
        ("metrics-server/metrics-server-service.yaml", {"metrics-server"}, False, "disabled"),
        ("sub/traefik.yaml", {"traefik"}, False, "disabled"),
        ("traefik.yaml", set(), True, "skip"),
        ("sub/traefik.yaml", set(), True, "skip"),
        ("traefik.yml", set(), True, "apply"),
        ("traefik.yaml", {"traefik"}, True, "disabled"),
    ],
    ids=lambda v: str(v),
)
def test_disable_and_skip_matrix(tmp_path: Path, rel: str, disable: set[str], skip: bool, action: str) -> None:
    make(tmp_path, rel)
    if skip:
        make(tmp_path, "traefik.yaml.skip")
    (found,) = [m for m in scan(tmp_path, frozenset(disable)) if m.rel == rel]
    assert found.action == action
