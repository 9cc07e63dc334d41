"""Values of Traefik's command-line flags, read the way Traefik reads them."""

from __future__ import annotations

from .errors import ConfigError

__all__ = ["flag_bool", "switched_on"]


def flag_bool(value: str | None, default: bool = False) -> bool:
    """``--flag`` (empty), true/false, 1/0, yes/no; anything else is an error."""
    if value is None:
        return default
    v = value.strip().lower()
    if v in ("true", "1", "yes", ""):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ConfigError(f"traefik: invalid boolean {value!r}")


def switched_on(flags: dict[str, str], prefix: str) -> bool:
    """A section such as ``accesslog`` is on when it or any of its options is given, unless it is set false."""
    if not any(k == prefix or k.startswith(prefix + ".") for k in flags):
        return False
    return flags.get(prefix) is None or flag_bool(flags.get(prefix), True)
