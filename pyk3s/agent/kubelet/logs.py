"""Read CRI-format container logs with kubectl's options (tailLines, sinceSeconds/sinceTime,
timestamps, limitBytes, follow)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["LogOptions", "format_entry", "follow_log", "parse_line", "read_log", "read_new_lines"]


@dataclass(frozen=True, slots=True)
class LogOptions:
    tail_lines: int | None = None
    since: float | None = None       # unix seconds
    timestamps: bool = False
    limit_bytes: int | None = None
    follow: bool = False


def _ts(text: str) -> float:
    base, _, frac = text.rstrip("Z").partition(".")
    sec = datetime.fromisoformat(base + "+00:00").timestamp()
    return sec + (float("0." + frac) if frac else 0.0)


def parse_line(line: bytes) -> tuple[str, bytes, bool, bytes] | None:
    """(timestamp, stream, full, content) of one CRI log line."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 4:
        return None
    return parts[0].decode(), parts[1], parts[2] == b"F", parts[3]


def format_entry(entry: tuple[str, bytes, bool, bytes], timestamps: bool) -> bytes:
    ts, _stream, full, content = entry
    out = content + (b"\n" if full else b"")
    return (ts.encode() + b" " + out) if timestamps else out


def _entries(data: bytes, opts: LogOptions) -> list[tuple[str, bytes, bool, bytes]]:
    entries = []
    for raw in data.splitlines():
        e = parse_line(raw)
        if e is None:
            continue
        if opts.since is not None:
            try:
                if _ts(e[0]) < opts.since:
                    continue
            except ValueError:
                pass
        entries.append(e)
    if opts.tail_lines is not None:
        entries = entries[-opts.tail_lines:] if opts.tail_lines > 0 else []
    return entries


def read_log(path: Path, opts: LogOptions) -> tuple[bytes, int]:
    """(formatted output honoring limitBytes, file offset read up to)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b"", 0
    end = data.rfind(b"\n") + 1
    out = b"".join(format_entry(e, opts.timestamps) for e in _entries(data[:end], opts))
    if opts.limit_bytes is not None:
        out = out[: opts.limit_bytes]
    return out, end


def read_new_lines(path: Path, offset: int) -> tuple[bytes, int]:
    """The complete lines written to a log after ``offset`` (none while there are none or there is no
    file yet), and the offset just after them."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return b"", offset
    end = data.rfind(b"\n") + 1
    return data[:end], offset + end


async def follow_log(path: Path, opts: LogOptions, running: Callable[[], bool]) -> AsyncIterator[bytes]:
    first, offset = read_log(path, opts)
    sent = len(first)
    if first:
        yield first
    while True:
        if opts.limit_bytes is not None and sent >= opts.limit_bytes:
            return
        lines, offset = read_new_lines(path, offset)
        if lines:
            chunk = b"".join(format_entry(e, opts.timestamps)
                             for e in (parse_line(x) for x in lines.splitlines()) if e is not None)
            if opts.limit_bytes is not None:
                chunk = chunk[: opts.limit_bytes - sent]
            sent += len(chunk)
            if chunk:
                yield chunk
            continue
        if not running():
            return
        await asyncio.sleep(0.2)
