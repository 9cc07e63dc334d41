"""The launcher's error when a container's program is missing names the volume that hides it."""

from pathlib import Path

from pyk3s.agent.kubelet.launch import _hidden_by


def test_a_program_hidden_by_a_volume_is_named_in_the_error(tmp_path: Path) -> None:
    hidden = str(tmp_path / "gone" / "python")
    spec = {"argv": [hidden, "-m", "pyk3s"], "mounts": [{"source": "/x", "target": str(tmp_path / "gone")}]}
    assert f"under the volume mounted at {tmp_path / 'gone'}" in _hidden_by(spec)


def test_a_program_present_or_outside_the_volumes_gets_no_hint(tmp_path: Path) -> None:
    assert _hidden_by({"argv": ["/bin/sh"], "mounts": [{"source": "/x", "target": "/bin"}]}) == ""
    assert _hidden_by({"argv": [str(tmp_path / "python")], "mounts": [{"source": "/x", "target": "/elsewhere"}]}) == ""
