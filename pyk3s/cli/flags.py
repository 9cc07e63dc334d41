"""K3s-style flags: one table per command, filled from defaults < environment < config file < CLI.

Rules (K3s's, see specs/k3s.md 6.4):
* Environment variables: each flag may name ``K3S_*`` variables; the ``PYK3S_*`` spelling of the same
  name is accepted too and wins over ``K3S_*``.
* The config file (``--config``/``K3S_CONFIG_FILE``, default ``/etc/rancher/pyk3s/config.yaml``) and its
  drop-ins ``config.yaml.d/*.yaml|*.yml`` (sorted) hold long flag names without dashes. Later files
  override earlier keys; ``key+:`` appends. Unknown keys are skipped with a warning. A missing file is fine.
* File values are inserted right after the subcommand, before the command line: a scalar given on the
  command line overrides the file; list flags collect both.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pyk3s.k3s.paths import default_config_path

__all__ = ["Flag", "Parsed", "parse_flags"]

log = logging.getLogger("pyk3s.flags")


@dataclass(frozen=True, slots=True)
class Flag:
    name: str  # long name without dashes
    help: str
    default: Any = None
    env: tuple[str, ...] = ()
    short: str = ""
    kind: str = "str"  # str | int | bool | list
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


def _env_value(flag: Flag, environ: dict[str, str]) -> str | None:
    names: list[str] = []
    for e in flag.env:
        if e.startswith("K3S_"):
            names.append("PYK3S_" + e[4:])
        names.append(e)
    for n in names:
        if n in environ:
            return environ[n]
    return None


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _file_args(path: str, flags: dict[str, Flag]) -> list[str]:
    """Flags from the config file and its drop-ins, as command-line arguments."""
    base = Path(path)
    files: list[Path] = []
    if base.is_file():
        files.append(base)
    dropins = Path(str(base) + ".d")
    if dropins.is_dir():
        files += sorted(p for p in dropins.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    merged: dict[str, Any] = {}
    for f in files:
        try:
            doc = yaml.safe_load(f.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise SystemExit(f"pyk3s: config file {f}: {err}") from err
        if not isinstance(doc, dict):
            raise SystemExit(f"pyk3s: config file {f}: expected a mapping of flag names to values")
        for key, value in doc.items():
            key = str(key)
            append = key.endswith("+")
            key = key.rstrip("+")
            if append and key in merged:
                old = merged[key]
                if isinstance(old, list) or isinstance(value, list):
                    merged[key] = [*(old if isinstance(old, list) else [old]), *(value if isinstance(value, list) else [value])]
                else:
                    merged[key] = f"{old},{value}"
            else:
                merged[key] = value
    args: list[str] = []
    for key, value in merged.items():
        flag = flags.get(key)
        if flag is None:
            log.warning("Unknown flag %s found in config file %s, skipping", key, path)
            continue
        if flag.kind == "bool":
            if value is True or (isinstance(value, str) and _truthy(value)):
                args.append(f"--{key}")
            continue
        for v in value if isinstance(value, list) else [value]:
            args.append(f"--{key}={v}")
    return args


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError as err:
            raise AttributeError(name) from err


def build_parser(prog: str, description: str, flags: Sequence[Flag]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    for f in flags:
        names = [f"--{f.name}"] + ([f"-{f.short}"] if f.short else [])
        env_note = f" [${', $'.join(f.env)}]" if f.env else ""
        default_note = f" (default: {f.default})" if f.default not in (None, "", [], False) else ""
        h = f.help + default_note + env_note
        if f.kind == "bool":
            p.add_argument(*names, dest=f.dest, action="store_true", default=None, help=h)
        elif f.kind == "list":
            p.add_argument(*names, dest=f.dest, action="append", default=None, help=h, metavar=f.metavar)
        elif f.kind == "int":
            p.add_argument(*names, dest=f.dest, type=int, default=None, help=h, metavar=f.metavar)
        else:
            p.add_argument(*names, dest=f.dest, default=None, help=h, metavar=f.metavar)
    return p


def parse_flags(
    prog: str,
    description: str,
    flags: Sequence[Flag],
    argv: Sequence[str],
    *,
    environ: dict[str, str] | None = None,
    config_flag: str | None = "config",
) -> Parsed:
    environ = dict(os.environ) if environ is None else environ
    table = {f.name: f for f in flags}
    parser = build_parser(prog, description, flags)
    cli = parser.parse_args(list(argv))
    file_args: list[str] = []
    if config_flag and config_flag in table:
        cfg_path = getattr(cli, table[config_flag].dest) or _env_value(table[config_flag], environ)
        cfg_path = cfg_path or default_config_path()
        file_args = _file_args(cfg_path, table)
    merged = parser.parse_args(file_args + list(argv))
    out: dict[str, Any] = {}
    for f in flags:
        value = getattr(merged, f.dest)
        if value is None:
            env = _env_value(f, environ)
            if env is not None:
                if f.kind == "bool":
                    value = _truthy(env)
                elif f.kind == "int":
                    value = int(env)
                elif f.kind == "list":
                    value = [env]
                else:
                    value = env
        if value is None:
            value = list(f.default) if isinstance(f.default, list | tuple) else f.default
        if f.kind == "list":
            # K3s accepts comma-separated values in repeatable flags.
            value = [part.strip() for v in (value or []) for part in str(v).split(",") if part.strip()]
        if f.kind == "bool":
            value = bool(value)
        out[f.dest] = value
    return Parsed(out)
