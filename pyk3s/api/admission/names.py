"""Name and key syntax checks with kube-apiserver's messages (k8s.io/apimachinery
``util/validation``): DNS-1123 subdomains and labels, DNS-1035 labels, qualified names (label and
annotation keys), label values, ConfigMap/Secret keys, port names and numbers, IP addresses,
environment variable names."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .causes import Cause, invalid

__all__ = [
    "dns1035_label", "dns1123_label", "dns1123_subdomain", "config_map_key", "env_var_name", "is_ip",
    "label_value", "port_name", "qualified_name", "valid_port", "validate_name", "NAME_RULES", "PORT_RANGE",
    "PROTOCOLS",
]

PROTOCOLS = ["SCTP", "TCP", "UDP"]
PORT_RANGE = "must be between 1 and 65535, inclusive"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    return msg + " (e.g. " + " or ".join(f"'{e}', " for e in examples) + f"regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + r"(\." + _LABEL_FMT + ")*"
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"


def _full(fmt: str) -> re.Pattern[str]:
    return re.compile("^" + fmt + r"\Z")


_LABEL_RE, _SUBDOMAIN_RE, _DNS1035_RE = _full(_LABEL_FMT), _full(_SUBDOMAIN_FMT), _full(_DNS1035_FMT)
_QNAME_RE, _LABEL_VALUE_RE, _CONFIG_KEY_RE = _full(_QNAME_FMT), _full(_LABEL_VALUE_FMT), _full(_CONFIG_KEY_FMT)

_LABEL_MSG = _regex_error("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                          "and must start and end with an alphanumeric character", _LABEL_FMT, "my-name", "123-abc")
_SUBDOMAIN_MSG = _regex_error("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                              "'-' or '.', and must start and end with an alphanumeric character", _SUBDOMAIN_FMT,
                              "example.com")
_DNS1035_MSG = _regex_error("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
                            "with an alphabetic character, and end with an alphanumeric character", _DNS1035_FMT,
                            "my-name", "abc-123")
_QNAME_MSG = _regex_error("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                          "an alphanumeric character", _QNAME_FMT, "MyName", "my.name", "123-abc")
_LABEL_VALUE_MSG = _regex_error("a valid label must be an empty string or consist of alphanumeric characters, "
                                "'-', '_' or '.', and must start and end with an alphanumeric character",
                                _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
_CONFIG_KEY_MSG = _regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                               _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name")


def dns1123_label(value: str) -> list[str]:
    errs = [_max_len(63)] if len(value) > 63 else []
    return errs + ([] if _LABEL_RE.match(value) else [_LABEL_MSG])


def dns1123_subdomain(value: str) -> list[str]:
    errs = [_max_len(253)] if len(value) > 253 else []
    return errs + ([] if _SUBDOMAIN_RE.match(value) else [_SUBDOMAIN_MSG])


def dns1035_label(value: str) -> list[str]:
    errs = [_max_len(63)] if len(value) > 63 else []
    return errs + ([] if _DNS1035_RE.match(value) else [_DNS1035_MSG])


def qualified_name(value: str) -> list[str]:
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) > 2:
        return ["a qualified name " + _QNAME_MSG + " with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain(parts[0]))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QNAME_RE.match(name):
        errs.append("name part " + _QNAME_MSG)
    return errs


def label_value(value: str) -> list[str]:
    errs = [_max_len(63)] if len(value) > 63 else []
    return errs + ([] if _LABEL_VALUE_RE.match(value) else [_LABEL_VALUE_MSG])


def config_map_key(value: str) -> list[str]:
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _CONFIG_KEY_RE.match(value):
        errs.append(_CONFIG_KEY_MSG)
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def port_name(value: str) -> list[str]:
    errs = [_max_len(15)] if len(value) > 15 else []
    if not re.match(r"^[-a-z0-9]+\Z", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def valid_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def env_var_name(value: str) -> list[str]:
    # RelaxedEnvironmentVariableValidation is on by default in 1.32.
    if all(" " <= ch <= "~" and ch != "=" for ch in value):
        return []
    return ["a valid environment variable name must consist only of printable ASCII characters other than '='"]


_RULES = {"subdomain": dns1123_subdomain, "label": dns1123_label, "dns1035": dns1035_label}

# Name rules per kind (ValidateXName in pkg/apis/*/validation); unlisted kinds use the caller's rule.
NAME_RULES: dict[str, str] = {"Namespace": "label", "Service": "dns1035", "Pod": "subdomain"}


def validate_name(kind: str, name: str, namespaced_rule: str = "subdomain", *, field: str = "metadata.name",
                  prefix: bool = False) -> list[Cause]:
    rule = _RULES[NAME_RULES.get(kind, namespaced_rule)]
    checked = name[:-1] if prefix and name.endswith("-") else name
    if kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        return [invalid(field, name, m) for m in _path_segment(checked)]
    return [invalid(field, name, m) for m in rule(checked)]


def _path_segment(name: str) -> list[str]:
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{ch}'" for ch in ("/", "%") if ch in name]
