"""The README's two commands, from a fresh clone: `scripts/setup.sh --run-server` installs what is missing
and starts a server that answers kubectl; `scripts/setup.sh --test` installs what the tests need and runs
them (CI runs the whole suite through the same command, `.ci/run`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyk3s_server import REPO, ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (REPO / ".git").exists() or not shutil.which("git"),
                                 reason="needs a git checkout and git (the test clones it)")]

SETUP = "scripts/setup.sh"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh clone of the committed tree: no venv, no build files, nothing by hand."""
    dest = tmp_path_factory.mktemp("fresh") / "pyk3s"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(dest)], check=True, timeout=120)
    yield dest
    shutil.rmtree(dest.parent, ignore_errors=True)


def test_readme_gives_exactly_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Set up and run\n.*?```sh\n(.*?)```", readme, re.S)
    assert block, "no set-up block in the README"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == [f"sudo {SETUP} --run-server", f"sudo {SETUP} --test"]
    assert "bash scripts/setup.sh --test" in (REPO / ".ci" / "run").read_text()


def test_run_server_from_a_fresh_clone(clone: Path) -> None:
    srv = ServerProcess(launcher=["bash", str(clone / SETUP), "--run-server"], workdir=clone)
    try:
        srv.start(timeout=420)          # creates the venv and installs pyk3s first
        assert srv.kubectl("get", "--raw", "/readyz").out == "ok"
        assert "kube-system" in srv.kubectl("get", "namespaces", "-o", "name").out
        assert (clone / ".venv" / "bin" / "pyk3s").exists()
    finally:
        srv.cleanup()


def test_test_command_from_a_fresh_clone(clone: Path) -> None:
    # a small part of the suite: the whole of it is what CI runs through the same command
    res = subprocess.run(["bash", SETUP, "--test", "tests/unit/cli", "tests/unit/images"], cwd=clone,
                         capture_output=True, text=True, timeout=900, env={**os.environ, "CI": "true"})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "All checks passed!" in out                  # ruff ran
    assert re.search(r"\d+ passed", out), out[-2000:]
    assert (clone / ".venv" / "bin" / "pytest").exists()
