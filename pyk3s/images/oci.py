"""Write container images as OCI image-layout tarballs (with a docker-archive ``manifest.json`` beside
``index.json``), the format ``ctr images import`` and the air-gap folder take.

An image here is one layer made from :class:`LayerEntry` rows plus an image config (entrypoint, cmd,
env, working dir). Everything is built in memory: these are small images (a static program, a busybox).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import struct
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ImageSpec", "LayerEntry", "build_archive", "busybox_entries", "oci_arch", "pause_entries",
           "pause_program", "qualify"]

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True, slots=True)
class LayerEntry:
    """One file system entry of the layer: a file (``data``), a directory (``data is None`` and no
    ``link``) or a symlink (``link``)."""
    path: str
    data: bytes | None = None
    mode: int = 0o644
    link: str = ""


@dataclass(frozen=True, slots=True)
class ImageSpec:
    name: str                                   # e.g. "docker.io/library/busybox:pk"
    entries: tuple[LayerEntry, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    working_dir: str = "/"
    labels: dict[str, str] = field(default_factory=dict)


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


def _layer_tar(entries: Iterable[LayerEntry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in sorted(entries, key=lambda x: x.path):
            info = tarfile.TarInfo(e.path.lstrip("/"))
            info.mtime, info.uid, info.gid = 0, 0, 0
            if e.link:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, e.link, 0o777
                tar.addfile(info)
            elif e.data is None:
                info.type, info.mode = tarfile.DIRTYPE, e.mode if e.mode != 0o644 else 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(e.data), e.mode
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_archive(spec: ImageSpec, out: Path) -> str:
    """Write ``spec`` as an OCI layout tarball at ``out``; returns the manifest digest."""
    layer_tar = _layer_tar(spec.entries)
    layer = gzip.compress(layer_tar, compresslevel=1, mtime=0)
    config = {
        "architecture": oci_arch(), "os": "linux",
        "config": {k: v for k, v in {"Entrypoint": list(spec.entrypoint) or None, "Cmd": list(spec.cmd) or None,
                                     "Env": list(spec.env), "WorkingDir": spec.working_dir,
                                     "Labels": dict(spec.labels) or None}.items() if v is not None},
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]},
        "history": [{"created_by": "pyk3s images"}],
    }
    config_b = json.dumps(config, sort_keys=True).encode()
    manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": _digest(config_b), "size": len(config_b)},
                "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": _digest(layer), "size": len(layer)}]}
    manifest_b = json.dumps(manifest, sort_keys=True).encode()
    full = qualify(spec.name)
    tag = full.rsplit(":", 1)[1] if "@" not in full else ""
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX,
             "manifests": [{"mediaType": MEDIA_MANIFEST, "digest": _digest(manifest_b), "size": len(manifest_b),
                            "annotations": {"io.containerd.image.name": full,
                                            "org.opencontainers.image.ref.name": tag}}]}
    blobs = {_digest(b).split(":")[1]: b for b in (layer, config_b, manifest_b)}
    docker_manifest = [{"Config": f"blobs/sha256/{_digest(config_b).split(':')[1]}", "RepoTags": [full],
                        "Layers": [f"blobs/sha256/{_digest(layer).split(':')[1]}"]}]
    files = [("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
             ("index.json", json.dumps(index).encode()),
             ("manifest.json", json.dumps(docker_manifest).encode()),
             *((f"blobs/sha256/{h}", b) for h, b in blobs.items())]
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
    tmp.replace(out)
    return _digest(manifest_b)


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
