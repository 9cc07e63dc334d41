"""The launcher's error when a container's program is missing names the volume that hides it."""

import os
from pathlib import Path

from pyk3s.agent.kubelet.launch import _hidden_by


def test_a_program_hidden_by_a_volume_is_named_in_the_error(tmp_path: Path) -> None:
    hidden = str(tmp_path / "gone" / "python")
    spec = {"argv": [hidden, "-m", "pyk3s"], "mounts": [{"source": "/x", "target": str(tmp_path / "gone")}]}
    assert f"under the volume mounted at {tmp_path / 'gone'}" in _hidden_by(spec)


def test_a_program_present_or_outside_the_volumes_gets_no_hint(tmp_path: Path) -> None:
    assert _hidden_by({"argv": ["/bin/sh"], "mounts": [{"source": "/x", "target": "/bin"}]}) == ""
    assert _hidden_by({"argv": [str(tmp_path / "python")], "mounts": [{"source": "/x", "target": "/elsewhere"}]}) == ""


def test_only_install_roots_under_a_volume_are_bound_back() -> None:
    from pyk3s.agent.kubelet.launch import _install_roots_under, install_roots
    roots = install_roots()
    above = os.path.dirname(roots[0])
    found = _install_roots_under([above, "/nowhere-pyk3s"])
    try:
        assert [r for r, _ in found] == [r for r in roots if r.startswith(above + "/")] and found
    finally:
        for _, fd in found:
            os.close(fd)
    assert _install_roots_under(["/nowhere-pyk3s"]) == []
