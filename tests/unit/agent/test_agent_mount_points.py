"""killall removes the empty mount points an earlier launcher recorded (``<agent>/mount-points``), deepest
first, and nothing that holds content; the launcher itself no longer creates any on the host."""

from pyk3s.agent.killall import _remove_mount_points


def test_recorded_mount_points_of_an_earlier_launcher_are_removed(tmp_path):
    record = tmp_path / "mount-points"
    for d in ("etc/coredns/custom", "var/run"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "var" / "run" / "x.sock").touch()
    (tmp_path / "var" / "run" / "keep").write_text("not ours")
    record.write_text("".join(f"{tmp_path / p}\n" for p in ("etc/coredns", "etc/coredns/custom", "var", "var/run",
                                                             "var/run/x.sock")))
    removed = _remove_mount_points(record)
    assert not (tmp_path / "etc" / "coredns").exists() and not (tmp_path / "var" / "run" / "x.sock").exists()
    assert (tmp_path / "etc").exists()  # not recorded: it existed before
    assert (tmp_path / "var" / "run" / "keep").exists()  # a non-empty directory stays
    assert str(tmp_path / "etc" / "coredns" / "custom") in removed and not record.exists()
