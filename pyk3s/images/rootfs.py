"""The root file system of pyk3s's built-in images, assembled from this machine's own Python.

Nothing is fetched: the image holds the interpreter that runs pyk3s here, at the same absolute paths
(the interpreter and its symlinks, the standard library without its tests, IDLE, Tk and
``ensurepip``), the packages pyk3s needs at run time and pyk3s itself in that interpreter's
site-packages, the shared libraries all of these load (found with ``ldd``, with the symlinks of
merged-``/usr`` systems), the tools an entry point runs (``nft`` for klipper-lb), and a minimal
``/etc``. An image's entry point is the argv the process runtime runs (``<python> -m pyk3s
<command>``).

One path moves: a venv (often inside a checkout, and a checkout is often under ``/tmp`` or a home
directory) is stored at :data:`IMAGE_VENV`, because a pod's volume over any parent of it (the
Traefik chart's emptyDir at ``/tmp``) would hide the interpreter of every built-in container. A venv
is relocatable this way: Python finds its ``pyvenv.cfg`` beside the ``bin`` directory it starts from.

What this cannot do: the images run only on this CPU architecture and need a kernel new enough for
this machine's C library; they are a snapshot of the installed pyk3s (build them again after an
upgrade); test-only packages are left out.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pyk3s.images.oci import HostFile, LayerEntry

__all__ = ["IMAGE_VENV", "Rootfs", "python_rootfs", "runtime_distributions"]

# where a venv lives inside the images (see the module docstring)
IMAGE_VENV = "/opt/pyk3s/venv"

# parts of the standard library no entry point imports (tests alone are 120 MB)
_STDLIB_SKIP = {"site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                "__phello__"}
_ELF_MAGIC = b"\x7fELF"
_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")

ETC_FILES = (
    LayerEntry("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:"
                             b"/sbin/nologin\n"),
    LayerEntry("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
    LayerEntry("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n"),
    LayerEntry("tmp", mode=0o1777),
)


@dataclass(frozen=True, slots=True)
class Rootfs:
    entries: tuple[LayerEntry | HostFile, ...]
    interpreter: str                       # the path the entry points start
    packages: tuple[str, ...]              # "name version" of the distributions included
    libraries: tuple[str, ...]             # shared libraries found with ldd
    tools: tuple[str, ...]                 # programs included for the entry points
    size: int = 0                          # bytes of file content
    missing: tuple[str, ...] = ()          # what could not be included, and why


class _Collector:
    def __init__(self, moved_from: str = "", moved_to: str = "") -> None:
        self.entries: dict[str, LayerEntry | HostFile] = {}
        self.moved_from, self.moved_to = moved_from, moved_to   # a host directory stored elsewhere

    def image_path(self, host_path: str) -> str:
        if self.moved_from and (host_path == self.moved_from or host_path.startswith(self.moved_from + "/")):
            return self.moved_to + host_path[len(self.moved_from):]
        return host_path

    def put(self, host_path: str, source: Path) -> str:
        """Store ``source`` where the image keeps ``host_path``; that image path."""
        arc = self.image_path(host_path)
        if arc not in self.entries:
            link = os.readlink(source) if source.is_symlink() else ""
            if link.startswith("/") and self.image_path(link) != link:
                self.entries[arc] = LayerEntry(arc, link=self.image_path(link))
            else:
                self.entries[arc] = HostFile(arc, source)
        return arc

    def add_path(self, path: str | Path, depth: int = 0) -> str:
        """Add ``path`` with every symlink on the way to it (``/lib`` -> ``usr/lib``); the real path."""
        parts = Path(os.path.abspath(path)).parts
        cur = Path("/")
        for i, part in enumerate(parts[1:], start=1):
            cur = cur / part
            if cur.is_symlink() and depth < 40:
                self.put(str(cur), cur)
                target = Path(os.path.normpath(cur.parent / os.readlink(cur)))
                return self.add_path(target.joinpath(*parts[i + 1:]), depth + 1)
        self.put(str(cur), cur)
        return str(cur)

    def add_tree(self, root: Path, skip_top: frozenset[str] | set[str] = frozenset(), into: Path | None = None) -> None:
        """Every file under ``root`` (at ``into`` when given), without other interpreters' or optimised bytecode."""
        real = Path(self.add_path(root)) if into is None else root
        dest = real if into is None else into
        for dirpath, dirnames, filenames in os.walk(real):
            rel = Path(dirpath).relative_to(real)
            if rel == Path("."):
                dirnames[:] = [d for d in dirnames if d not in skip_top]
            for name in filenames:
                if not _wanted(name):
                    continue
                self.put(str(dest / rel / name), Path(dirpath) / name)

    def elf_files(self) -> Iterator[Path]:
        for e in list(self.entries.values()):
            if not isinstance(e, HostFile) or e.source.is_symlink() or not e.source.is_file():
                continue
            if not (e.path.endswith(".so") or ".so." in e.path or os.access(e.source, os.X_OK)):
                continue
            try:
                with open(e.source, "rb") as fh:
                    if fh.read(4) == _ELF_MAGIC:
                        yield e.source
            except OSError:
                continue


# extension modules for what was left out of the standard library (Tk pulls in X11) and its test helpers
_SKIP_MODULES = ("_tkinter", "_test", "_ctypes_test", "_xxtestfuzz", "xxlimited", "_xxsubinterpreters")


def _wanted(name: str) -> bool:
    if name.endswith(".so") and name.startswith(_SKIP_MODULES):
        return False
    if name.endswith(".pyc"):
        # the plain bytecode of this interpreter only (.opt-1/.opt-2 and other versions are never read)
        return name.endswith(f".{sys.implementation.cache_tag}.pyc")
    return not name.endswith((".a", ".pyo"))


def _requirement_name(req: str) -> str | None:
    """The distribution a requirement names, or None for one that only an extra asks for."""
    spec, _, marker = req.partition(";")
    if "extra" in marker:
        return None
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return m.group(1) if m else None


def runtime_distributions(root: str = "pyk3s") -> list[metadata.Distribution]:
    """The installed distributions ``root`` needs at run time, recursively (extras left out; a
    requirement whose marker does not apply here is simply not installed, and skipped)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [_requirement_name(r) for r in metadata.requires(root) or []]
    while todo:
        name = todo.pop()
        if name is None:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = dist
        todo += [_requirement_name(r) for r in dist.requires or []]
    return [seen[k] for k in sorted(seen)]


def _ldd(paths: Iterable[Path]) -> set[str]:
    found: set[str] = set()
    for p in paths:
        try:
            out = subprocess.run(["ldd", str(p)], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        found.update(m.group(1) for m in _LDD_LINE.finditer(out))
    return found


def python_rootfs(tools: tuple[str, ...] = ("nft",), package: str = "pyk3s") -> Rootfs:
    """The file system of the built-in images (see the module's docstring)."""
    import pyk3s

    venv = os.path.realpath(sys.prefix)
    in_venv = sys.prefix != sys.base_prefix and (Path(venv) / "pyvenv.cfg").exists()
    c = _Collector(venv, IMAGE_VENV) if in_venv else _Collector()
    missing: list[str] = []
    # the venv's own name for the interpreter (bin/python), stored at the venv's new place
    interpreter = c.image_path(os.path.join(os.path.realpath(os.path.dirname(sys.executable)),
                                            os.path.basename(sys.executable)))
    c.add_path(sys.executable)
    if in_venv:
        c.add_path(Path(venv) / "pyvenv.cfg")
    paths = sysconfig.get_paths()
    c.add_tree(Path(paths["stdlib"]), skip_top=_STDLIB_SKIP | {d for d in os.listdir(paths["stdlib"])
                                                               if d.startswith("config-")})
    purelib = Path(c.add_path(paths["purelib"]))
    packages = []
    for dist in runtime_distributions(package):
        base = Path(str(dist.locate_file(""))).resolve()
        for f in dist.files or []:
            src = Path(str(dist.locate_file(f))).resolve()
            if not src.is_file() or not src.is_relative_to(base) or not _wanted(src.name):
                continue   # console scripts outside site-packages and stale bytecode stay out
            if base == purelib:
                c.put(str(purelib / src.relative_to(base)), src)
            else:
                c.add_path(src)
        packages.append(f"{dist.metadata['Name']} {dist.version}")
    # pyk3s itself, from wherever it is installed (an editable install's source tree too)
    c.add_tree(Path(pyk3s.__file__).resolve().parent, into=purelib / "pyk3s")
    found_tools = []
    for tool in tools:
        where = shutil.which(tool)
        if where is None:
            missing.append(f"{tool}: not on PATH (the entry points that run it fail in the image)")
            continue
        c.add_path(where)
        found_tools.append(where)
    libraries = _ldd(c.elf_files())
    # loaded with dlopen, so ldd does not list it: glibc needs it to unwind a thread that exits early
    for libc in [lib for lib in libraries if Path(lib).name == "libc.so.6"]:
        gcc_s = Path(libc).parent / "libgcc_s.so.1"
        if gcc_s.exists():
            libraries.add(str(gcc_s))
    for lib in sorted(libraries):
        c.add_path(lib)
    for e in ETC_FILES:
        c.entries.setdefault(e.path, e)
    size = sum(e.source.lstat().st_size for e in c.entries.values()
               if isinstance(e, HostFile) and e.source.is_file() and not e.source.is_symlink())
    return Rootfs(tuple(c.entries.values()), interpreter, tuple(packages), tuple(sorted(libraries)),
                  tuple(found_tools), size, tuple(missing))
