import hashlib
from pathlib import Path

from pyk3s.cli.manifests import status_rows
from pyk3s.manifests.stage import StageSettings, stage


def addon(name: str, source: Path, checksum: str = "", **ann: str) -> dict:
    return {"metadata": {"name": name, "annotations": ann}, "spec": {"source": str(source), "checksum": checksum}}


def test_status_rows_cover_applied_failed_skipped_disabled_and_gone(tmp_path: Path) -> None:
    server = tmp_path / "server"
    stage(StageSettings(server_dir=server))
    mdir = server / "manifests"
    good, bad = mdir / "good.yaml", mdir / "bad.yaml"
    good.write_text("a")
    bad.write_text("b")
    (mdir / "frozen.yaml").write_text("c")
    (mdir / "frozen.yaml.skip").write_text("")
    sha = hashlib.sha256(b"a").hexdigest()
    addons = {
        "good": addon("good", good, sha, **{"pyk3s.io/last-result": "AppliedManifest"}),
        "bad": addon("bad", bad, **{"pyk3s.io/last-result": "ParseManifestFailed",
                                    "pyk3s.io/last-error": 'Parse manifest at "x" failed: line 3'}),
        "old": addon("old", mdir / "old.yaml", "f" * 64),
        "elsewhere": addon("elsewhere", tmp_path / "other" / "x.yaml"),
    }
    rows = {r["FILE"]: r for r in status_rows(mdir, addons, frozenset({"traefik"}))}
    assert rows["good.yaml"]["RESULT"] == "AppliedManifest" and rows["good.yaml"]["CHECKSUM"] == sha[:12]
    assert rows["bad.yaml"]["RESULT"] == "ParseManifestFailed" and "line 3" in rows["bad.yaml"]["LAST ERROR"]
    assert rows["frozen.yaml"]["RESULT"].startswith("Skipped")
    assert rows["traefik.yaml"]["RESULT"].startswith("Disabled")
    assert rows["coredns.yaml"]["RESULT"].startswith("Pending")
    assert rows["old.yaml (gone)"]["ADDON"] == "kube-system/old"
    assert not any("elsewhere" in r["ADDON"] for r in rows.values())
