"""Container launcher: ``unshare --mount --propagation private python -m pyk3s.agent.kubelet.launch SPEC``.

It runs in a fresh private mount namespace (so its bind mounts are the container's alone), enters the
pod's network namespace, bind-mounts the volumes, resolv.conf and hosts, then forks the container
command in its own session (process group = container pid, so the kubelet can signal the group) and
stays as its log writer, the way conmon does: stdout/stderr become CRI log lines
(``<RFC3339Nano> stdout|stderr F|P <text>``). The child's pid goes to ``pid_file`` once running and the
exit status to ``exit_file`` as JSON. SIGTERM/SIGINT/SIGKILL-safe: the child gets PDEATHSIG.

When started under ``unshare --uts`` with a ``hostname``, that becomes the container's host name.
Containers with ``stdin: true`` read the launcher's own stdin (a pipe the kubelet writes); with
``tty: true`` the launcher's stdin is a pty slave that becomes the child's controlling terminal and
stdout/stderr, and ``tty_fd`` is the pty master the launcher reads the output from. Interactive
containers log partial lines as they come (a prompt has no newline), like conmon.

Spec JSON: {"argv": [...], "env": {...}, "cwd": str|null, "netns": "/run/netns/..."|null,
"mounts": [{"source", "target", "readOnly", "file"}], "log": path, "pid_file": path, "exit_file": path,
"hostname": str|null, "stdin": bool, "tty_fd": int|null}

A mount point or working directory the node lacks is made in the container's view alone, never in the
node's filesystem (:mod:`pyk3s.agent.kubelet.mountview`).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import sys
import termios
import time
from datetime import UTC, datetime

from pyk3s.agent.kubelet.mountview import MountView

__all__ = ["main", "rfc3339nano"]

_CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC = 1, 32, 4096, 16384
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
SCRATCH_DIR = "rootfs"  # in the container's directory: where a mirror of / is built when one is needed


def rfc3339nano(ts: float | None = None) -> str:
    ts = time.time() if ts is None else ts
    sec = int(ts)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{int((ts - sec) * 1e9):09d}Z"


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"launch: {what}: {os.strerror(err)}")


def _enter_netns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(_libc.setns(fd, _CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(fd)


def _bind(source: str, target: str) -> None:
    _check(_libc.mount(source.encode(), target.encode(), None, _MS_BIND | _MS_REC, None), f"bind {source} {target}")


def _remount_read_only(target: str) -> None:
    _check(_libc.mount(b"", target.encode(), None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None),
           f"remount ro {target}")


def _child(spec: dict, out_w: int, err_w: int) -> None:
    try:
        os.setsid()
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if spec.get("tty_fd") is not None:
            os.close(spec["tty_fd"])
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            os.dup2(0, 1)
            os.dup2(0, 2)
        else:
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            if not spec.get("stdin"):
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
        if spec.get("cwd"):
            os.chdir(spec["cwd"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execvpe(spec["argv"][0], spec["argv"], spec.get("env") or {})
    except BaseException as exc:  # noqa: BLE001 - report any exec failure as the container's stderr
        os.write(2, f"pyk3s: failed to start container process {spec['argv'][:1]}: {exc}{_hidden_by(spec)}\n"
                 .encode())
        os._exit(127)


def install_roots() -> list[str]:
    """Where pyk3s runs from: its source tree and its venv (one root when the venv is inside the tree)."""
    tree = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
    prefix = os.path.realpath(sys.prefix)
    return [tree] if prefix == tree or prefix.startswith(tree + "/") else [tree, prefix]


def _install_roots_under(targets: list[str]) -> list[tuple[str, int]]:
    """(root, O_PATH descriptor) of each installation root that a volume target lies above."""
    real = [os.path.realpath(t).rstrip("/") + "/" for t in targets]
    return [(root, os.open(root, os.O_PATH)) for root in install_roots()
            if any(root.startswith(t) for t in real)]


def _hidden_by(spec: dict) -> str:
    """Why a program the node has is missing in the container: a volume mounted over one of its parents
    (an emptyDir at /tmp hides a pyk3s installed under /tmp from the built-in images' pods)."""
    program = spec["argv"][0] if spec.get("argv") else ""
    for m in spec.get("mounts") or []:
        parent = m["target"].rstrip("/") + "/"
        if program.startswith(parent) and not os.path.exists(program):
            return (f" ({program} is under the volume mounted at {m['target']}, which hides it in the container;"
                    " install pyk3s outside that directory)")
    return ""


def _write_log(log, stream: bytes, buf: bytearray, final: bool) -> None:
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            break
        log.write(rfc3339nano().encode() + b" " + stream + b" F " + bytes(buf[:nl]) + b"\n")
        del buf[: nl + 1]
    if buf and (final or len(buf) >= 16384):
        log.write(rfc3339nano().encode() + b" " + stream + b" P " + bytes(buf) + b"\n")
        buf.clear()
    log.flush()


def run(spec: dict, state_dir: int) -> int:
    """``state_dir`` is the container's directory (pid, exit and log files), opened before any mount:
    a volume mounted over an ancestor of the data dir (``/tmp`` with a data dir under /tmp) must not
    hide the launcher's own files or the volumes' sources."""
    if spec.get("netns"):
        _enter_netns(spec["netns"])
    if spec.get("hostname"):
        socket.sethostname(spec["hostname"])
    log = open(spec["log"], "ab")  # noqa: SIM115 - closed when the child's output ends
    view = MountView(lambda: _scratch_dir(state_dir))
    # parents before children whatever the pod lists first, like containerd's mount ordering
    mounts = sorted(spec.get("mounts") or [], key=lambda m: len([p for p in m["target"].split("/") if p]))
    sources = [os.open(m["source"], os.O_PATH) for m in mounts]
    hidden = _install_roots_under([m["target"] for m in mounts])
    try:
        # read-only only after every bind, as runc does: a mount point nested in a read-only volume
        # (/etc/coredns/custom inside /etc/coredns) is created while its parent is still writable
        for m, fd in zip(mounts, sources, strict=True):
            target = view.make(m["target"], bool(m.get("file")))
            _bind(f"/proc/self/fd/{fd}", target)
            if not m.get("file"):
                view.bound(target)
        # a volume over a parent of pyk3s's own installation (an emptyDir at /tmp, a checkout in /tmp)
        # would hide the built-in images' program: the installation is bound back in its place
        for root, fd in hidden:
            _bind(f"/proc/self/fd/{fd}", view.make(root, False))
    finally:
        for fd in sources + [fd for _, fd in hidden]:
            os.close(fd)
    if spec.get("cwd"):
        view.make(spec["cwd"], False)  # a workingDir the node lacks exists in the container alone
    for m in reversed(mounts):
        if m.get("readOnly"):
            _remount_read_only(m["target"])
    tty_fd = spec.get("tty_fd")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        _child(spec, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    # our copy of the pty slave / stdin pipe would keep the terminal from hanging up when the child ends
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    _write_state(state_dir, os.path.basename(spec["pid_file"]), str(pid))

    sel = selectors.DefaultSelector()
    bufs = {out_r: (b"stdout", bytearray()), err_r: (b"stderr", bytearray())}
    if tty_fd is not None:
        bufs[tty_fd] = (b"stdout", bytearray())
    interactive = bool(spec.get("stdin")) or tty_fd is not None
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    with log:
        open_fds = set(bufs)
        while open_fds:
            try:
                events = sel.select()
            except InterruptedError:
                continue
            for key, _ in events:
                fd = key.fd
                try:
                    data = os.read(fd, 65536)
                except (InterruptedError, BlockingIOError):  # the pty master is shared non-blocking
                    continue
                except OSError as exc:
                    if exc.errno != errno.EIO:  # EIO: the pty's last slave was closed
                        raise
                    data = b""
                stream, buf = bufs[fd]
                if not data:
                    sel.unregister(fd)
                    open_fds.discard(fd)
                    _write_log(log, stream, buf, True)
                    continue
                buf.extend(data)
                _write_log(log, stream, buf, interactive)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    result: dict[str, int | str]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        result = {"exitCode": 128 + sig, "signal": sig}
    else:
        result = {"exitCode": os.WEXITSTATUS(status), "signal": 0}
    result["finishedAt"] = rfc3339nano()
    _write_state(state_dir, os.path.basename(spec["exit_file"]), json.dumps(result))
    return 0


def _scratch_dir(state_dir: int) -> str:
    """An empty directory of this container's own, for the mirror of ``/`` (see :mod:`.mountview`)."""
    try:
        os.mkdir(SCRATCH_DIR, 0o700, dir_fd=state_dir)
    except FileExistsError:
        pass
    return f"/proc/self/fd/{state_dir}/{SCRATCH_DIR}"


def _write_state(state_dir: int, name: str, text: str) -> None:
    """Write ``name`` in the container's directory atomically, through the descriptor opened before mounting."""
    tmp = name + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=state_dir)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, name, src_dir_fd=state_dir, dst_dir_fd=state_dir)


def _close_inherited_fds(keep: int | None) -> None:
    """Close every descriptor but stdio and ``keep``: a spawner handing over an extra descriptor may pass
    others with it (uvloop's ``pass_fds`` does), and a stray copy of the pty slave would keep the
    terminal from hanging up when the container ends."""
    if keep is None:
        os.closerange(3, 1 << 20)
    else:
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 20)


def main(argv: list[str]) -> int:
    with open(argv[0]) as fh:
        spec = json.load(fh)
    _close_inherited_fds(spec.get("tty_fd"))
    state_dir = os.open(os.path.dirname(spec["exit_file"]) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        return run(spec, state_dir)
    except OSError as exc:
        _write_state(state_dir, os.path.basename(spec["exit_file"]), json.dumps(
            {"exitCode": 128, "signal": 0, "finishedAt": rfc3339nano(), "reason": "StartError", "message": str(exc)}))
        sys.stderr.write(f"{exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
