"""The container launcher's stdin and tty handling, run directly (no namespaces, no mounts): the
pty slave becomes the container's terminal, partial lines (prompts) are logged as they come, and a stray
copy of the slave handed over by the spawner does not keep the launcher waiting after the container ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pyk3s.agent.kubelet.logs import parse_line
from pyk3s.agent.kubelet.worker import pod_hostname


def _spec(tmp: Path, argv: list[str], **extra: object) -> Path:
    spec = {"argv": argv, "env": {"PATH": os.environ["PATH"]}, "cwd": None, "netns": None, "mounts": [],
            "log": str(tmp / "0.log"), "pid_file": str(tmp / "0.pid"), "exit_file": str(tmp / "0.exit"),
            **extra}
    path = tmp / "0.json"
    path.write_text(json.dumps(spec))
    return path


def _entries(tmp: Path) -> list[tuple[bytes, bool, bytes]]:
    return [(e[1], e[2], e[3]) for e in map(parse_line, (tmp / "0.log").read_bytes().splitlines()) if e]


def _wait_exit(launcher: subprocess.Popen, tmp: Path) -> dict:
    launcher.wait(timeout=10)
    return json.loads((tmp / "0.exit").read_text())


def test_tty_container_gets_a_terminal_and_prompts_are_logged(tmp_path: Path):
    master, slave = os.openpty()
    stray = os.dup(slave)
    argv = ["sh", "-c", 'test -t 0 && test -t 2 && printf "prompt> "; read x; echo got-$x; exit 7']
    spec = _spec(tmp_path, argv, stdin=True, tty_fd=master)
    launcher = subprocess.Popen([sys.executable, "-m", "pyk3s.agent.kubelet.launch", str(spec)],
                                stdin=slave, pass_fds=(master, stray))
    os.close(slave)
    os.close(stray)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (tmp_path / "0.log").exists() or \
                b"prompt> " not in (tmp_path / "0.log").read_bytes():
            time.sleep(0.05)
        assert (b"stdout", False, b"prompt> ") in _entries(tmp_path)  # logged before its newline
        os.write(master, b"abc\n")
        assert _wait_exit(launcher, tmp_path)["exitCode"] == 7
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        os.close(master)
    text = b"".join(c + (b"\n" if full else b"") for _s, full, c in _entries(tmp_path)).replace(b"\r", b"")
    assert b"got-abc\n" in text
    assert {s for s, _f, _c in _entries(tmp_path)} == {b"stdout"}


def test_stdin_container_reads_the_pipe_to_end_of_file(tmp_path: Path):
    r, w = os.pipe()
    spec = _spec(tmp_path, ["sh", "-c", "test ! -t 0 && cat; echo done >&2"], stdin=True)
    launcher = subprocess.Popen([sys.executable, "-m", "pyk3s.agent.kubelet.launch", str(spec)], stdin=r)
    os.close(r)
    try:
        os.write(w, b"one\ntwo")
        os.close(w)
        assert _wait_exit(launcher, tmp_path)["exitCode"] == 0
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    entries = _entries(tmp_path)
    assert (b"stdout", True, b"one") in entries and (b"stderr", True, b"done") in entries
    assert b"".join(c for s, _f, c in entries if s == b"stdout") == b"onetwo"


def test_pod_hostname():
    assert pod_hostname({"metadata": {"name": "web"}, "spec": {}}) == "web"
    assert pod_hostname({"metadata": {"name": "web"}, "spec": {"hostname": "web-0"}}) == "web-0"
    assert pod_hostname({"metadata": {"name": "web"}, "spec": {"hostNetwork": True}}) is None
    assert pod_hostname({"metadata": {"name": "a" * 62 + "-b"}, "spec": {}}) == "a" * 62
