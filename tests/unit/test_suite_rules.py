"""The suite's own rules: e2e tests show as skipped (with the reason) when not root, --require-areas fails
a run in which a whole file was skipped, only timing_sensitive tests rerun, and no test reads files
outside the checkout except ../shared."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUPPORT = REPO / "tests" / "support"


def run_pytest(args: list[str], cwd: Path, as_user: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", *args]
    if as_user and os.geteuid() == 0:
        # a user namespace makes geteuid() non-zero while files stay readable
        argv = ["unshare", "--user", "--map-user=1000", "--map-group=1000", *argv]
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("unshare"), reason="needs unshare to drop root")
def test_e2e_tests_are_collected_and_skipped_with_the_reason_when_not_root() -> None:
    res = run_pytest(["tests/e2e/test_server_start.py", "--require-areas"], REPO, as_user=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"SKIPPED \[\d+\] tests/e2e/test_server_start.py.*need root", res.stdout), res.stdout
    assert re.search(r"\d+ skipped", res.stdout) and "passed" not in res.stdout


def test_require_areas_fails_when_every_test_of_a_file_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "test_ok.py", "def test_ok():\n    pass\n")
    write(tmp_path, "test_gone.py", "import pytest\n"
          "pytestmark = pytest.mark.skipif(True, reason='etcd binary not installed')\n"
          "def test_a():\n    pass\n")
    base = ["-p", "suite_rules", "test_ok.py", "test_gone.py"]
    assert run_pytest(base, tmp_path).returncode == 0          # without the option: skips are allowed
    res = run_pytest([*base, "--require-areas"], tmp_path)
    assert res.returncode == 1, res.stdout
    assert "test_gone.py: etcd binary not installed" in res.stdout
    assert "test_ok.py" not in res.stdout.split("--require-areas")[-1]


def test_require_areas_allows_a_partly_skipped_file(tmp_path: Path) -> None:
    write(tmp_path, "test_part.py", "import pytest\n"
          "def test_ok():\n    pass\n"
          "@pytest.mark.skip(reason='needs chromium')\ndef test_b():\n    pass\n")
    res = run_pytest(["-p", "suite_rules", "test_part.py", "--require-areas"], tmp_path)
    assert res.returncode == 0, res.stdout
    assert "needs chromium" in res.stdout


def test_only_timing_sensitive_tests_rerun(tmp_path: Path) -> None:
    write(tmp_path, "test_flaky.py", "import pytest\n"
          "RUNS = {'t': 0, 'p': 0}\n"
          "@pytest.mark.timing_sensitive\ndef test_timed():\n    RUNS['t'] += 1\n    assert RUNS['t'] > 1\n"
          "def test_plain():\n    RUNS['p'] += 1\n    assert RUNS['p'] > 1\n")
    res = run_pytest(["-p", "suite_rules", "test_flaky.py", "-o", "markers=timing_sensitive: x"], tmp_path)
    assert "1 failed, 1 passed, 1 rerun" in res.stdout, res.stdout
    assert "FAILED test_flaky.py::test_plain" in res.stdout


# -- no test reads outside the checkout, except ../shared ------------------------------------------------

ALLOWED_ABSOLUTE = (
    "/etc/", "/run/", "/proc/", "/sys/", "/dev/", "/usr/", "/bin/", "/sbin/", "/tmp", "/var/run/",
    "/var/tmp/", "/var/lib/rancher/", "/root/.kube",
)


def path_literals(source: str) -> list[str]:
    """String constants that can start a path (not the middle of an f-string)."""
    tree = ast.parse(source)
    inner = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values[1:]}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inner]


@pytest.mark.parametrize("path", sorted((REPO / "tests").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_no_test_reads_outside_the_checkout(path: Path) -> None:
    source = path.read_text()
    # the machine's own tree (/work/...) or a home directory: the fresh clone in CI has neither
    for literal in path_literals(source):
        assert not re.match(r"/(work|home)/", literal), f"{path.name}: absolute path {literal!r}"
    # climbing out of the checkout is allowed only into ../shared
    for m in re.finditer(r"REPO\.parent\s*/\s*\"([^\"]+)\"", source):
        assert m.group(1) == "shared", f"{path.name}: reads ../{m.group(1)}"
    for m in re.finditer(r"parents\[(\d+)\]", source):
        top = len(path.relative_to(REPO).parts) - 1      # parents[top] is the checkout
        assert int(m.group(1)) <= top, f"{path.name}: parents[{m.group(1)}] leaves the checkout"
