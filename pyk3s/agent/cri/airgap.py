"""Images into containerd with ``ctr``: the air-gap folder (``<data-dir>/agent/images/*.tar``,
``.tar.gz``, ``.tar.zst``), imported at agent start and pinned (label ``io.cri-containerd.pinned``) so
image garbage collection never removes them, and the pause image pyk3s builds itself."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from pathlib import Path

from pyk3s.images.oci import ImageSpec, build_archive, pause_entries, qualify

__all__ = ["IMAGE_SUFFIXES", "CtrError", "archives", "ctr_argv", "import_archive", "import_folder",
           "import_pause_image", "pinned_images"]

log = logging.getLogger("pyk3s.agent.containerd")

IMAGE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst")
NAMESPACE = "k8s.io"
PINNED_LABEL = "io.cri-containerd.pinned=pinned"


class CtrError(RuntimeError):
    pass


def ctr_argv(socket: Path | str, *args: str) -> list[str]:
    ctr = shutil.which("ctr") or "ctr"
    return [ctr, "--address", str(socket), "--namespace", NAMESPACE, *args]


def archives(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(IMAGE_SUFFIXES))


async def _run(argv: list[str], stdin_cmd: list[str] | None = None, timeout: float = 600) -> str:
    """``argv`` (its stdin piped from ``stdin_cmd`` when given); stdout, or CtrError with stderr."""
    feeder = None
    stdin: int = asyncio.subprocess.DEVNULL
    if stdin_cmd is not None:
        read_end, write_end = os.pipe()
        try:
            feeder = await asyncio.create_subprocess_exec(*stdin_cmd, stdout=write_end,
                                                          stderr=asyncio.subprocess.PIPE)
        finally:
            os.close(write_end)
        stdin = read_end
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=stdin, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    finally:
        if stdin_cmd is not None:
            os.close(stdin)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        if feeder is not None:
            _, ferr = await asyncio.wait_for(feeder.communicate(), 10)
            if feeder.returncode:
                raise CtrError(f"{stdin_cmd[0]}: {ferr.decode(errors='replace').strip()}")  # type: ignore[index]
    except TimeoutError:
        for p in (proc, feeder):
            if p is not None and p.returncode is None:
                p.kill()
        raise CtrError(f"{' '.join(argv[:6])}… timed out after {timeout:.0f}s") from None
    if proc.returncode:
        raise CtrError(err.decode(errors="replace").strip() or f"exit status {proc.returncode}")
    return out.decode(errors="replace")


def _decompressor(path: Path) -> list[str] | None:
    name = path.name
    if name.endswith((".tar.gz", ".tgz")):
        return ["gzip", "-dc", str(path)]
    if name.endswith((".tar.zst", ".tzst")):
        if shutil.which("zstd") is None:
            raise CtrError(f"{path}: zstd is needed to read .tar.zst image archives")
        return ["zstd", "-dc", str(path)]
    return None


async def import_archive(socket: Path, path: Path, pin: bool = True) -> list[str]:
    """Import one archive; returns the image names it held (each labelled pinned)."""
    decompress = _decompressor(path)
    src = "-" if decompress else str(path)
    # unpacked at import, so the first container of the image starts without that step
    out = await _run(ctr_argv(socket, "images", "import", src), stdin_cmd=decompress)
    names = [line.split()[1] for line in out.splitlines()
             if line.startswith("unpacking ") and len(line.split()) > 2]
    if pin:
        for name in names:
            await _run(ctr_argv(socket, "images", "label", name, PINNED_LABEL))
    return names


async def import_folder(socket: Path, folder: Path) -> dict[str, list[str] | str]:
    """Every archive of the folder: file name -> image names, or the error that archive gave."""
    results: dict[str, list[str] | str] = {}
    for path in archives(folder):
        try:
            results[path.name] = await import_archive(socket, path)
            log.info("containerd: imported %s: %s", path.name, ", ".join(results[path.name]) or "no images")
        except CtrError as exc:
            results[path.name] = str(exc)
            log.warning("containerd: importing %s failed: %s", path, exc)
    return results


async def pinned_images(socket: Path) -> set[str]:
    """The names containerd holds labelled pinned (the CRI of containerd 1.6 does not report the label)."""
    out = await _run(ctr_argv(socket, "images", "ls", "-q", f'labels."{PINNED_LABEL.split("=")[0]}"=={PINNED_LABEL.split("=")[1]}'),
                     timeout=30)
    return {line.strip() for line in out.splitlines() if line.strip()}


async def import_pause_image(socket: Path, name: str) -> None:
    """Build pyk3s's pause image (one tiny static program) and import it pinned under ``name``."""
    with tempfile.TemporaryDirectory(prefix="pyk3s-pause-") as tmp:
        out = Path(tmp) / "pause.tar"
        build_archive(ImageSpec(qualify(name), pause_entries(), entrypoint=("/pause",)), out)
        await import_archive(socket, out)
