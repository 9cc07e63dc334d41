"""Helm's value semantics: sources merged in helm-controller's order, --set, null removing defaults."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pyk3s.controllers.helm.shape import MAP, Obj, check, from_defaults, leaf, with_overrides
from pyk3s.controllers.helm.sources import user_values
from pyk3s.controllers.helm.values import (
    ValuesError,
    ValuesSource,
    coalesce,
    merge_sources,
    parse_set,
    parse_values,
    typed_set_value,
)


@pytest.mark.parametrize(("text", "message"), [
    ("a: [1", "not valid YAML: line 1"),
    ("- a\n- b\n", "must be a YAML mapping of chart values, not a list"),
    ("just text", "not a string"),
    ("1: x", "value keys must be strings"),
], ids=["yaml", "list", "scalar", "key"])
def test_bad_sources_name_where(text: str, message: str) -> None:
    with pytest.raises(ValuesError) as err:
        parse_values(ValuesSource("HelmChartConfig kube-system/traefik spec.valuesContent", text))
    assert str(err.value).startswith("HelmChartConfig kube-system/traefik spec.valuesContent: ")
    assert message.replace("not a string", "mapping") in str(err.value) or message in str(err.value)


def test_later_sources_win_and_maps_merge() -> None:
    merged = merge_sources([{"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "d": None}])
    assert merged == {"a": {"b": 1, "c": [3]}, "d": None}


def test_coalesce_null_removes_a_default_and_maps_merge() -> None:
    defaults = {"ports": {"web": {"port": 8000}, "metrics": {"port": 9100}}, "x": 1}
    assert coalesce({"ports": {"metrics": None, "web": {"exposedPort": 80}}}, defaults) == \
        {"ports": {"web": {"port": 8000, "exposedPort": 80}}, "x": 1}
    assert coalesce({"x": None}, defaults) == {"ports": defaults["ports"]}


@pytest.mark.parametrize(("value", "typed"), [
    (3, 3), ("3", "3"), ("true", True), ("False", False), ("null", None), ("a,b", "a,b"), (True, True)])
def test_set_values_are_typed_as_helm_controller_passes_them(value: Any, typed: Any) -> None:
    assert typed_set_value(value) == typed


def test_set_paths() -> None:
    out = parse_set({"global.systemDefaultRegistry": "", "tolerations[1].key": "a", "a\\.b.c": "x",
                     "deployment.replicas": 2}, "spec.set", {"deployment": {"kind": "Deployment"}})
    assert out == {"global": {"systemDefaultRegistry": ""}, "tolerations": [None, {"key": "a"}],
                   "a.b": {"c": "x"}, "deployment": {"kind": "Deployment", "replicas": 2}}
    with pytest.raises(ValuesError, match=r"spec.set\['a\[x\]'\]"):
        parse_set({"a[x]": 1}, "spec.set")


async def test_user_values_follow_helm_controllers_order() -> None:
    secret = {"data": {"v.yaml": base64.b64encode(b"logs: {general: {level: WARN}}\nreplicas: 5\n").decode()}}

    async def read(ns: str, name: str) -> dict[str, Any] | None:
        return secret if (ns, name) == ("kube-system", "vals") else None

    chart = {"kind": "HelmChart", "metadata": {"name": "t", "namespace": "kube-system"},
             "spec": {"valuesContent": "replicas: 1\nlogs: {general: {level: INFO, format: json}}\n",
                      "valuesSecrets": [{"name": "vals", "keys": ["v.yaml"]}], "set": {"replicas": 9}}}
    conf = {"metadata": {"name": "t", "namespace": "kube-system"}, "spec": {"valuesContent": "replicas: 7\n"}}
    assert await user_values(chart, conf, read) == {"replicas": 9, "logs": {"general": {"level": "WARN",
                                                                                          "format": "json"}}}
    chart["spec"]["valuesSecrets"] = [{"name": "missing", "keys": ["k"]}]
    with pytest.raises(ValuesError, match='Secret "kube-system/missing" not found'):
        await user_values(chart, None, read)
    chart["spec"]["valuesSecrets"] = [{"name": "missing", "keys": ["k"], "ignoreUpdates": True}]
    assert (await user_values(chart, None, read))["replicas"] == 9


def test_shape_names_unknown_keys_and_wrong_types() -> None:
    shape = with_overrides(from_defaults({"a": {"b": 1, "c": "x"}, "m": {}}),
                           {"a.d": leaf("int|str"), "ports": Obj({}, Obj({"port": leaf("int")}))})
    problems = check({"a": {"b": "1", "d": 2, "e": 1}, "m": {"anything": [1]}, "ports": {"x": {"port": True}}},
                     shape, "demo 1.0")
    assert [str(p) for p in problems] == [
        "a.b: must be an integer, not a string '1'",
        "a.e: unknown value: chart demo 1.0 has no such key",
        "ports.x.port: must be an integer, not a boolean true",
    ]
    assert check({"a": None, "m": None}, shape, "demo") == []
    assert check({"m": 3}, with_overrides(shape, {"m": MAP}), "demo")[0].message == "must be a mapping, not an integer 3"
