"""Write container images as OCI image-layout tarballs (with a docker-archive ``manifest.json`` beside
``index.json``), the format ``ctr images import`` and the air-gap folder take.

A layer is written once, streamed to disk while its two digests are computed (:func:`write_layer`),
from :class:`LayerEntry` rows (content given here) and :class:`HostFile` rows (a file, directory or
symlink of this machine, copied with its mode and modification time). :func:`write_images` puts
several images into one archive, each with its own config (entrypoint, cmd, env, ...) and names, all
sharing the layers they have in common. :func:`build_archive` is the one-image, one-layer shortcut.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import stat
import struct
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["HostFile", "ImageConfig", "ImageSpec", "LayerBlob", "LayerEntry", "RunSettings", "build_archive",
           "busybox_entries", "oci_arch", "pause_entries", "pause_program", "qualify", "write_images", "write_layer"]

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class LayerEntry:
    """One file system entry of the layer: a file (``data``), a directory (``data is None`` and no
    ``link``) or a symlink (``link``)."""
    path: str
    data: bytes | None = None
    mode: int = 0o644
    link: str = ""


@dataclass(frozen=True, slots=True)
class HostFile:
    """A file, directory (its own entry, not its content) or symlink of this machine at ``source``,
    stored at ``path`` in the layer."""
    path: str
    source: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    """How an image's container runs (the ``config`` of its OCI image configuration)."""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = (DEFAULT_PATH,)
    working_dir: str = "/"
    labels: dict[str, str] = field(default_factory=dict)

    def run_settings(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(RunSettings)}


@dataclass(frozen=True, slots=True)
class ImageSpec(RunSettings):
    """An image of one layer written from ``entries``."""
    name: str                                   # e.g. "docker.io/library/busybox:pk"
    entries: tuple[LayerEntry, ...]


@dataclass(frozen=True, slots=True)
class ImageConfig(RunSettings):
    """One image of an archive: the names it is imported under and its run settings."""
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LayerBlob:
    """A written layer: the gzip file, its digest and size, and the digest of the uncompressed tar."""
    path: Path
    digest: str
    diff_id: str
    size: int


def oci_arch(machine: str | None = None) -> str:
    m = machine or platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(m, m)


def qualify(name: str) -> str:
    """The fully qualified reference containerd stores: ``busybox:1`` -> ``docker.io/library/busybox:1``."""
    repo, tag = name, ""
    at = name.find("@")
    if at < 0 and name.rfind(":") > name.rfind("/"):
        repo, tag = name[: name.rfind(":")], name[name.rfind(":"):]
    elif at >= 0:
        repo, tag = name[:at], name[at:]
    first, _, rest = repo.partition("/")
    if not rest:
        repo = f"docker.io/library/{repo}"
    elif not ("." in first or ":" in first or first == "localhost"):
        repo = f"docker.io/{repo}"
    return repo + (tag or ":latest")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Hashing(io.RawIOBase):
    """Passes writes on to ``sink`` and keeps their sha256 and length."""

    def __init__(self, sink: io.RawIOBase | io.BufferedIOBase | gzip.GzipFile) -> None:
        self.sink, self.sha, self.length = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.length += len(data)
        self.sink.write(data)
        return len(data)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _add(tar: tarfile.TarFile, path: str, entry: LayerEntry | HostFile | None) -> None:
    info = tarfile.TarInfo(path)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if entry is None:                       # a parent directory nobody listed
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(info)
    elif isinstance(entry, LayerEntry):
        info.mtime = 0
        if entry.link:
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
            tar.addfile(info)
        elif entry.data is None:
            info.type, info.mode = tarfile.DIRTYPE, entry.mode if entry.mode != 0o644 else 0o755
            tar.addfile(info)
        else:
            info.size, info.mode = len(entry.data), entry.mode
            tar.addfile(info, io.BytesIO(entry.data))
    else:
        st = os.lstat(entry.source)
        # whole seconds, as the .pyc files next to the sources recorded them
        info.mtime = int(st.st_mtime)
        if stat.S_ISLNK(st.st_mode):
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(entry.source), 0o777
            tar.addfile(info)
        elif stat.S_ISDIR(st.st_mode):
            # readable and searchable by every user: a container's user is rarely the owner on this machine
            info.type, info.mode = tarfile.DIRTYPE, stat.S_IMODE(st.st_mode) | 0o755
            tar.addfile(info)
        else:
            info.size, info.mode = st.st_size, stat.S_IMODE(st.st_mode) | 0o444
            with open(entry.source, "rb") as fh:
                tar.addfile(info, fh)


def write_layer(entries: Iterable[LayerEntry | HostFile], out: Path, compresslevel: int = 1) -> LayerBlob:
    """Write the entries (sorted; missing parent directories added) as a gzipped layer at ``out``."""
    by_path: dict[str, LayerEntry | HostFile] = {}
    for e in entries:
        by_path.setdefault(e.path.strip("/"), e)
    paths = set(by_path)
    for path in list(by_path):
        paths.update(_parents(path))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fh:
        outer = _Hashing(fh)
        with gzip.GzipFile(filename="", fileobj=outer, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
            inner = _Hashing(gz)
            with tarfile.open(fileobj=inner, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path in sorted(paths):
                    _add(tar, path, by_path.get(path))
    return LayerBlob(out, "sha256:" + outer.sha.hexdigest(), "sha256:" + inner.sha.hexdigest(), outer.length)


def _config_blob(img: ImageConfig, layers: Sequence[LayerBlob]) -> bytes:
    config = {
        "architecture": oci_arch(), "os": "linux",
        "config": {k: v for k, v in {"Entrypoint": list(img.entrypoint) or None, "Cmd": list(img.cmd) or None,
                                     "Env": list(img.env), "WorkingDir": img.working_dir,
                                     "Labels": dict(img.labels) or None}.items() if v is not None},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created_by": "pyk3s images"} for _ in layers],
    }
    return json.dumps(config, sort_keys=True).encode()


def write_images(images: Sequence[tuple[ImageConfig, Sequence[LayerBlob]]], out: Path) -> list[str]:
    """One archive holding every image (each under all of its names); returns the manifest digests."""
    blobs: dict[str, bytes] = {}
    layer_files: dict[str, LayerBlob] = {}
    index_rows: list[dict] = []
    docker_rows: list[dict] = []
    digests: list[str] = []
    for img, layers in images:
        config_b = _config_blob(img, layers)
        manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                    "config": {"mediaType": MEDIA_CONFIG, "digest": _digest(config_b), "size": len(config_b)},
                    "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer.digest, "size": layer.size}
                               for layer in layers]}
        manifest_b = json.dumps(manifest, sort_keys=True).encode()
        blobs[_digest(config_b)] = config_b
        blobs[_digest(manifest_b)] = manifest_b
        layer_files.update((layer.digest, layer) for layer in layers)
        full_names = [qualify(n) for n in img.names]
        for full in full_names:
            tag = full.rsplit(":", 1)[1] if "@" not in full else ""
            index_rows.append({"mediaType": MEDIA_MANIFEST, "digest": _digest(manifest_b), "size": len(manifest_b),
                               "annotations": {"io.containerd.image.name": full,
                                               "org.opencontainers.image.ref.name": tag}})
        docker_rows.append({"Config": "blobs/sha256/" + _digest(config_b).split(":")[1], "RepoTags": full_names,
                            "Layers": ["blobs/sha256/" + layer.digest.split(":")[1] for layer in layers]})
        digests.append(_digest(manifest_b))
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": index_rows}
    files = [("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
             ("index.json", json.dumps(index).encode()),
             ("manifest.json", json.dumps(docker_rows).encode()),
             *((f"blobs/sha256/{d.split(':')[1]}", b) for d, b in blobs.items())]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for digest, layer in layer_files.items():
            info = tarfile.TarInfo(f"blobs/sha256/{digest.split(':')[1]}")
            info.size, info.mode = layer.size, 0o644
            with open(layer.path, "rb") as fh:
                tar.addfile(info, fh)
    tmp.replace(out)
    return digests


def build_archive(spec: ImageSpec, out: Path) -> str:
    """Write ``spec`` as an OCI layout tarball at ``out``; returns the manifest digest."""
    with tempfile.TemporaryDirectory(prefix="pyk3s-layer-") as tmp:
        layer = write_layer(spec.entries, Path(tmp) / "layer.tar.gz")
        img = ImageConfig((spec.name,), **spec.run_settings())
        return write_images([(img, [layer])], out)[0]


# -- the pause program ------------------------------------------------------------------------------------

_BASE = 0x400000
_CODE = {
    # loop: mov eax, 34 (pause); syscall; jmp loop
    "x86_64": (0x3E, bytes.fromhex("b8220000000f05ebf7")),
    # loop: x0..x3 = 0; x8 = 73 (ppoll); svc #0; b loop
    "aarch64": (0xB7, b"".join(struct.pack("<I", w) for w in (
        0xD2800000, 0xD2800001, 0xD2800002, 0xD2800003, 0xD2800928, 0xD4000001, 0x17FFFFFA))),
}


def pause_program(machine: str | None = None) -> bytes:
    """A static ELF executable of a few dozen bytes that waits for signals forever: the pod sandbox's
    process. Its default dispositions end it on SIGKILL (and, outside a PID namespace, SIGTERM)."""
    m = machine or platform.machine()
    if m not in _CODE:
        raise ValueError(f"no pause program for architecture {m!r} (have {', '.join(_CODE)})")
    e_machine, code = _CODE[m]
    entry = _BASE + 64 + 56
    total = 64 + 56 + len(code)
    ehdr = (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8
            + struct.pack("<HHIQQQIHHHHHH", 2, e_machine, 1, entry, 64, 0, 0, 64, 56, 1, 0, 0, 0))
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, total, total, 0x1000)
    return ehdr + phdr + code


def pause_entries(machine: str | None = None) -> tuple[LayerEntry, ...]:
    return (LayerEntry("pause", pause_program(machine), 0o755),)


def busybox_entries(busybox: Path, applets: Sequence[str], extra: Sequence[LayerEntry] = ()) -> tuple[LayerEntry, ...]:
    """A minimal root file system around a static busybox: ``/bin/busybox`` and a symlink per applet."""
    rows = [LayerEntry(d) for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "var", "www")]
    rows.append(LayerEntry("bin/busybox", busybox.read_bytes(), 0o755))
    rows += [LayerEntry(f"bin/{a}", link="busybox") for a in applets if a != "busybox"]
    rows += [LayerEntry("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
             LayerEntry("etc/group", b"root:x:0:\nnobody:x:65534:\n")]
    return tuple(rows) + tuple(extra)
