"""Mount points the launcher creates are recorded; killall removes the empty ones, deepest first."""

from pyk3s.agent.killall import _remove_mount_points
from pyk3s.agent.kubelet.launch import _make_mount_point


def test_created_mount_points_are_recorded_and_removed(tmp_path):
    record = tmp_path / "mount-points"
    (tmp_path / "etc").mkdir()
    _make_mount_point(str(tmp_path / "etc" / "coredns"), False, str(record))
    _make_mount_point(str(tmp_path / "etc" / "coredns" / "custom"), False, str(record))
    _make_mount_point(str(tmp_path / "var" / "run" / "x.sock"), True, str(record))
    _make_mount_point(str(tmp_path / "etc"), False, str(record))  # existed: not recorded
    lines = record.read_text().split()
    assert str(tmp_path / "etc") not in lines
    assert {str(tmp_path / p) for p in ("etc/coredns", "etc/coredns/custom", "var", "var/run",
                                        "var/run/x.sock")} == set(lines)
    (tmp_path / "var" / "run" / "keep").write_text("not ours")
    removed = _remove_mount_points(record)
    assert not (tmp_path / "etc" / "coredns").exists() and not (tmp_path / "var" / "run" / "x.sock").exists()
    assert (tmp_path / "var" / "run" / "keep").exists()  # a non-empty directory stays
    assert str(tmp_path / "etc" / "coredns" / "custom") in removed and not record.exists()
