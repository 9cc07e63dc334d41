"""The resource catalog: CRD rows installed and removed, create-only rows, and the CRD watch that
keeps the served table in step with the store."""

from __future__ import annotations

import asyncio

from pyk3s.api.catalog import CRD_PREFIX, ResourceCatalog
from pyk3s.api.codec import dumps
from pyk3s.api.store.memory import MemoryStore
from pyk3s.api.watch import WatchCache


def crd(columns: list[dict] | None = None) -> dict:
    version = {"name": "v1", "served": True, "storage": True,
               "schema": {"openAPIV3Schema": {"type": "object"}}, "additionalPrinterColumns": columns or []}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [version, {**version, "name": "v2", "storage": False}]}}


def test_install_swaps_the_table_only_when_rows_change():
    catalog = ResourceCatalog()
    builtin = catalog.table
    catalog.install_crd(crd())
    installed = catalog.table
    assert installed is not builtin
    assert {r.version for r in installed.crd_rows("widgets.example.com")} == {"v1", "v2"}
    assert builtin.get("example.com", "v1", "widgets") is None  # an earlier snapshot stays as it was
    catalog.install_crd(crd())
    assert catalog.table is installed
    catalog.install_crd(crd([{"name": "Color", "type": "string", "jsonPath": ".spec.color"}]))
    assert catalog.table is not installed
    assert catalog.table.get("example.com", "v1", "widgets").printer_columns[0]["name"] == "Color"


def test_uninstall_returns_the_rows_it_removed():
    catalog = ResourceCatalog()
    catalog.install_crd(crd())
    rows = catalog.uninstall_crd("widgets.example.com")
    assert [r.version for r in rows] == ["v1", "v2"]
    assert catalog.table.get("example.com", "v1", "widgets") is None
    table = catalog.table
    assert catalog.uninstall_crd("widgets.example.com") == [] and catalog.table is table


def test_virtual_rows_are_create_only_and_added_once():
    catalog = ResourceCatalog()
    catalog.add_virtual("example.com", "v1", "checks", "Check", namespaced=True)
    row = catalog.table.get("example.com", "v1", "checks")
    assert row is not None and row.virtual and row.verbs == ("create",) and row.namespaced
    table = catalog.table
    catalog.add_virtual("example.com", "v1", "checks", "Check")
    assert catalog.table is table


async def test_start_serves_stored_crds_and_follows_changes():
    store = MemoryStore()
    await store.start()
    watches = WatchCache(store)
    catalog = ResourceCatalog()
    key = CRD_PREFIX + "widgets.example.com"
    await store.create(key, dumps(crd()))
    try:
        await catalog.start(store, watches)
        assert catalog.table.get("example.com", "v2", "widgets") is not None
        await store.delete(key)
        for _ in range(200):
            if catalog.table.get("example.com", "v2", "widgets") is None:
                break
            await asyncio.sleep(0.01)
        assert catalog.table.get("example.com", "v2", "widgets") is None
    finally:
        await catalog.stop()
        await watches.close()
        await store.close()
