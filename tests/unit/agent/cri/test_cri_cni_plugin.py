"""The pyk3s CNI plugin's protocol side (no namespaces touched): VERSION, errors, config."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pyk3s.agent.cni.bridge import BridgeConfig
from pyk3s.agent.cni.plugin import SUPPORTED_VERSIONS, _cni_args, conflist, run


def call(env: dict[str, str], stdin: str = "", prog: str = "pyk3s") -> tuple[int, dict]:
    out = io.StringIO()
    rc = run(env, io.StringIO(stdin), out, prog)
    return rc, json.loads(out.getvalue() or "{}")


def test_version_lists_the_supported_spec_versions() -> None:
    rc, doc = call({"CNI_COMMAND": "VERSION"})
    assert rc == 0 and doc["cniVersion"] == "1.0.0" and doc["supportedVersions"] == list(SUPPORTED_VERSIONS)


def test_errors_are_spec_error_objects() -> None:
    rc, doc = call({"CNI_COMMAND": "ADD"}, "{not json")
    assert rc == 1 and doc["code"] == 6 and "not JSON" in doc["msg"]
    rc, doc = call({"CNI_COMMAND": "ADD"}, json.dumps({"cniVersion": "9.9.9", "type": "pyk3s"}))
    assert rc == 1 and doc["code"] == 1 and doc["cniVersion"] == "9.9.9"
    rc, doc = call({"CNI_COMMAND": "ADD"}, json.dumps({"cniVersion": "1.0.0", "type": "pyk3s"}))
    assert rc == 1 and doc["code"] == 4 and "CNI_NETNS" in doc["msg"]
    rc, doc = call({"CNI_COMMAND": "ADD", "CNI_NETNS": "/proc/1/ns/net"},
                   json.dumps({"cniVersion": "1.0.0", "type": "pyk3s"}))
    assert rc == 1 and doc["code"] == 4 and "/run/netns" in doc["msg"]
    rc, doc = call({"CNI_COMMAND": "FROB"}, json.dumps({"cniVersion": "1.0.0"}))
    assert rc == 1 and doc["code"] == 4


def test_check_of_an_unknown_pod_names_it(tmp_path: Path) -> None:
    conf = conflist(BridgeConfig("pkb0", "10.42.7.0/24", ("10.42.0.0/16",), ("10.43.0.0/16",)),
                    tmp_path / "ipam", tmp_path / "cni")
    plugin = {**conf["plugins"][0], "cniVersion": "1.0.0", "name": "pyk3s"}
    rc, doc = call({"CNI_COMMAND": "CHECK", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_UID=u-9",
                    "CNI_NETNS": "/run/netns/cni-x"}, json.dumps(plugin))
    assert rc == 1 and doc["code"] == 3 and "u-9" in doc["msg"]


def test_conflist_and_cni_args() -> None:
    conf = conflist(BridgeConfig("pkb0", "10.42.7.0/24", ("10.42.0.0/16",), ("10.43.0.0/16",)),
                    Path("/d/ipam/pkb0"), Path("/d/cni"))
    assert conf["cniVersion"] == "1.0.0" and conf["plugins"][0]["type"] == "pyk3s"
    assert conf["plugins"][0]["podCIDR"] == "10.42.7.0/24" and conf["plugins"][0]["ipamDir"] == "/d/ipam/pkb0"
    assert _cni_args("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_UID=abc") == {
        "IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "ns", "K8S_POD_UID": "abc"}
