"""A container's view of the filesystem, grown where a mount point is missing without writing to the host.

The process runtime has no image: a container sees the node's own tree in a private mount namespace
(the launcher runs under ``unshare --mount --propagation private``). A volume's ``mountPath`` that does
not exist there (``/data`` for the Traefik chart's data volume, ``/etc/coredns`` for CoreDNS's config)
must appear in the container alone; creating it in the node's filesystem would leave directories
behind on the host and let two clusters on one machine race over them.

So where a missing mount point's nearest existing directory is part of the node's tree, that
directory is covered, in the container's namespace only, by a tmpfs that mirrors it: every entry is
bind-mounted back (recursively, so mounts beneath stay visible) and symbolic links are copied. The
missing directories are then made in the tmpfs. The node's root cannot be covered in place (a mount
stacked on ``/`` is not seen through the process's root), so for ``/`` the mirror is built on a
scratch directory of the container's own (marked unbindable, so mirroring a parent of it does not copy
it into itself), moved over ``/`` and entered with ``chroot``, as ``switch_root`` does. Paths in the
new view are the old ones; descriptors opened before (the volumes' sources, the launcher's files) stay
valid, since the old tree stays attached beneath.

A mount point inside a volume bound earlier (``/etc/coredns/custom`` in the ``/etc/coredns`` volume)
is made in that volume, as runc does: the volume is the pod's own storage.
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Callable

__all__ = ["MountView", "MountViewError"]

_MS_BIND, _MS_MOVE, _MS_REC, _MS_UNBINDABLE = 4096, 8192, 16384, 1 << 17
_libc = ctypes.CDLL(None, use_errno=True)


class MountViewError(OSError):
    pass


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    rc = _libc.mount(source.encode() if source is not None else None, target.encode(),
                     fstype.encode() if fstype is not None else None, flags,
                     data.encode() if data is not None else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise MountViewError(err, f"launch: mount {fstype or source or ''} on {target}: {os.strerror(err)}")


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class MountView:
    """Makes mount points in a private mount namespace; ``scratch()`` returns an empty directory of the
    container's own (a path, possibly through ``/proc/self/fd``) for a mirror of ``/``."""

    def __init__(self, scratch: Callable[[], str]) -> None:
        self._scratch = scratch
        self._own: set[str] = set()       # directories whose writes stay in this namespace (mirrors, what we made there)
        self._volumes: list[str] = []     # targets of volumes bound so far: the pod's own storage

    def bound(self, target: str) -> None:
        """``target`` now holds a volume: mount points below it are made in the volume."""
        self._volumes.append(os.path.realpath(target))

    def make(self, target: str, is_file: bool) -> str:
        """Make ``target`` exist in this namespace (a directory, or an empty file); returns its real path."""
        path = os.path.realpath(target)
        missing: list[str] = []
        existing = path
        while not os.path.exists(existing):
            missing.append(os.path.basename(existing))
            existing = os.path.dirname(existing)
        if not missing:
            return path
        if not os.path.isdir(existing):
            raise MountViewError(20, f"launch: mount point {target}: {existing} is not a directory")
        if not self._writable(existing):
            self._mirror(existing)
        current = existing
        for i, name in enumerate(reversed(missing)):
            current = os.path.join(current, name)
            if is_file and i == len(missing) - 1:
                os.close(os.open(current, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            else:
                os.mkdir(current, 0o755)
                self._own.add(current)
        return path

    def _writable(self, directory: str) -> bool:
        return directory in self._own or any(_within(directory, v) for v in self._volumes)

    def _mirror(self, directory: str) -> None:
        if directory == "/":
            self._mirror_root()
        else:
            original = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                _mount("tmpfs", directory, "tmpfs", 0, self._tmpfs_options(original))
                self._fill(original, directory)
            finally:
                os.close(original)
        self._own.add(directory)

    @staticmethod
    def _tmpfs_options(original: int) -> str:
        st = os.fstat(original)
        return f"mode={stat.S_IMODE(st.st_mode):o},uid={st.st_uid},gid={st.st_gid}"

    @staticmethod
    def _fill(original: int, mirror: str) -> None:
        """Every entry of the directory open as ``original`` shown again under ``mirror``."""
        for name in os.listdir(original):
            st = os.stat(name, dir_fd=original, follow_symlinks=False)
            entry = os.path.join(mirror, name)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=original), entry)
                continue
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(entry, 0o755)
            else:
                os.close(os.open(entry, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            _mount(f"/proc/self/fd/{original}/{name}", entry, None, _MS_BIND | _MS_REC)

    def _mirror_root(self) -> None:
        scratch = self._scratch()
        original = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _mount("tmpfs", scratch, "tmpfs", 0, self._tmpfs_options(original))
            _mount(None, scratch, None, _MS_UNBINDABLE)
            self._fill(original, scratch)
        finally:
            os.close(original)
        cwd = os.getcwd()
        os.chdir(scratch)
        _mount(".", "/", None, _MS_MOVE)
        os.chroot(".")
        try:
            os.chdir(cwd)
        except OSError:
            os.chdir("/")
