"""Router rules: parse once, evaluate as closures (spec §1).

``parse_rule(rule, syntax)`` returns a :class:`CompiledRule`: ``match(request) -> bool``, the set of hosts
the rule requires (used to index routes by Host; ``None`` when the rule can match any host) and
``explain(request)`` listing every matcher call with its outcome. ``host_only`` says the outcome depends on
the host alone (only Host, HostHeader and HostRegexp matchers), which lets the proxy decide such routes
once per Host value; ``host_path_only`` likewise for rules that read the host and the path only (what
Ingress objects produce).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config.errors import RuleError
from .matchers_v2 import V2_MATCHERS
from .matchers_v3 import V3_MATCHERS, Matcher
from .parser import And, Call, Node, Not, parse_expression

__all__ = ["CompiledRule", "parse_rule", "rule_syntax"]


def rule_syntax(value: str | None, default: str = "v3") -> str:
    """Unknown or empty syntax values fall back to the default (1.5.1)."""
    return value if value in ("v2", "v3") else default


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: str
    syntax: str
    match: Matcher
    hosts: frozenset[str] | None
    leaves: tuple[tuple[str, Matcher], ...]
    host_only: bool = False  # every matcher reads only the request's host
    host_path_only: bool = False  # every matcher reads only the request's host and path

    def explain(self, request: object) -> list[tuple[str, bool]]:
        return [(text, bool(fn(request))) for text, fn in self.leaves]


def _leaf_text(call: Call) -> str:
    return f"{call.name}(" + ", ".join(f"`{a}`" for a in call.args) + ")"


def _build(node: Node, table: dict[str, tuple[str, Callable[[tuple[str, ...]], Matcher]]],
           leaves: list[tuple[str, Matcher]]) -> Matcher:
    if isinstance(node, Call):
        entry = table.get(node.name)
        if entry is None:
            raise RuleError(f"unsupported function: {node.name}")
        fn = entry[1](node.args)
        leaves.append((_leaf_text(node), fn))
        return fn
    if isinstance(node, Not):
        inner = _build(node.inner, table, leaves)
        return lambda r: not inner(r)
    left = _build(node.left, table, leaves)
    right = _build(node.right, table, leaves)
    if isinstance(node, And):
        return lambda r: left(r) and right(r)
    return lambda r: left(r) or right(r)


def _hosts(node: Node, table: dict[str, tuple[str, Callable[[tuple[str, ...]], Matcher]]]) -> frozenset[str] | None:
    """Hosts a request must have for the rule to match, or None when any host may match."""
    if isinstance(node, Call):
        canon = table[node.name][0]
        if canon not in ("Host", "HostHeader"):
            return None
        hosts = frozenset(a.lower().rstrip(".") for a in node.args)
        return None if any("*" in h for h in hosts) else hosts
    if isinstance(node, Not):
        return None
    left, right = _hosts(node.left, table), _hosts(node.right, table)
    if isinstance(node, And):
        if left is None:
            return right
        return left if right is None else left & right
    if left is None or right is None:
        return None
    return left | right


_HOST_MATCHERS = frozenset(("Host", "HostHeader", "HostRegexp"))
_HOST_PATH_MATCHERS = _HOST_MATCHERS | {"Path", "PathPrefix", "PathRegexp"}


def _reads_only(node: Node, table: dict[str, tuple[str, Callable[[tuple[str, ...]], Matcher]]],
                matchers: frozenset[str]) -> bool:
    if isinstance(node, Call):
        return table[node.name][0] in matchers
    if isinstance(node, Not):
        return _reads_only(node.inner, table, matchers)
    return _reads_only(node.left, table, matchers) and _reads_only(node.right, table, matchers)


def parse_rule(rule: str, syntax: str = "v3") -> CompiledRule:
    """Parse and compile a rule; raise :class:`RuleError` naming the problem."""
    table = V2_MATCHERS if syntax == "v2" else V3_MATCHERS
    tree = parse_expression(rule)
    leaves: list[tuple[str, Matcher]] = []
    match = _build(tree, table, leaves)
    return CompiledRule(rule, syntax, match, _hosts(tree, table), tuple(leaves),
                        _reads_only(tree, table, _HOST_MATCHERS), _reads_only(tree, table, _HOST_PATH_MATCHERS))
