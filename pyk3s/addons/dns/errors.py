"""Errors of the DNS add-on.

    DnsError
     +-- CorefileError   a Corefile (or an option in it) is wrong: names file, line and directive
"""

from __future__ import annotations

__all__ = ["CorefileError", "DnsError"]


class DnsError(Exception):
    """Base of every error raised by pyk3s.addons.dns."""


class CorefileError(DnsError):
    """A Corefile problem, worded like CoreDNS: `plugin/<name>: <file>:<line> - Error during parsing: <why>`."""

    def __init__(self, message: str, *, file: str = "", line: int = 0, directive: str = "") -> None:
        where = f"{file}:{line} - " if file else ""
        prefix = f"plugin/{directive}: " if directive else ""
        super().__init__(f"{prefix}{where}Error during parsing: {message}")
        self.file, self.line, self.directive, self.reason = file, line, directive, message
