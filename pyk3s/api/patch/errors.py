"""Errors of the patch layer; the API core turns them into a ``Status``.

::

    PatchError       the patch is malformed (code 400) or cannot be applied (code 422)
    ApplyConflict    server-side apply touched fields another manager owns (409, reason Conflict)
"""

from __future__ import annotations

__all__ = ["ApplyConflict", "PatchError"]


class PatchError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ApplyConflict(Exception):
    """``conflicts`` holds ``(manager, api_version, field_path)``; ``api_version`` is "" for appliers
    because upstream prints the version only for managers of operation Update."""

    def __init__(self, conflicts: list[tuple[str, str, str]]) -> None:
        self.conflicts = conflicts
        self.message = conflict_message(conflicts)
        super().__init__(self.message)

    @property
    def causes(self) -> list[dict[str, str]]:
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {_who(m, v)}", "field": p}
                for m, v, p in self.conflicts]


def _who(manager: str, api_version: str) -> str:
    return f'"{manager}" using {api_version}' if api_version else f'"{manager}"'


def conflict_message(conflicts: list[tuple[str, str, str]]) -> str:
    if len(conflicts) == 1:
        m, v, p = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {_who(m, v)}: {p}"
    by_manager: dict[tuple[str, str], list[str]] = {}
    for m, v, p in conflicts:
        by_manager.setdefault((m, v), []).append(p)
    lines: list[str] = []
    for (m, v), paths in sorted(by_manager.items()):
        lines.append(f"conflicts with {_who(m, v)}:")
        lines.extend(f"- {p}" for p in paths)
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
