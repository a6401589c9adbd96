"""The product descriptions: one module per upstream product in `mica.products`, the derived
ones beside their readers, the registry's targets, and the one-way flow (an upstream
description imports no reader, source or simulator)."""

from __future__ import annotations

import json
import subprocess
import sys

from mica.engine.registry import products


def test_product_modules_import_no_reader_source_or_simulator():
    code = """
import importlib, json, pkgutil, sys
import mica.products
names = [m.name for m in pkgutil.walk_packages(mica.products.__path__, "mica.products.")]
for name in names:
    importlib.import_module(name)
upstream = ("mica.archive", "mica.sources", "mica.sim", "mica.cli")
print(json.dumps([names, sorted(m for m in sys.modules if m.startswith(upstream))]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names, loaded = json.loads(proc.stdout)
    homes = {type(e.load()).__module__ for e in products() if e.layout in ("time", "obsid")}
    assert homes <= set(names)  # every upstream description was among the modules imported
    assert loaded == []


def test_registry_descriptions_live_in_their_product_module():
    """(Each description's name is its entry's: tests/conformance/test_products.py.)"""
    homes = {e.name: type(e.load()).__module__ for e in products() if e.layout != "calib"}
    assert homes == {
        "aca-l0": "mica.products.aca_l0",
        "asp-l1": "mica.products.asp_l1",
        "obspar": "mica.products.obspar",
        "acq-stats": "mica.stats.acq_product",
        "guide-stats": "mica.stats.guide_product",
        "vv": "mica.vv.product",
    }


def test_user_modules_serve_the_same_descriptions():
    from mica.archive import aca_l0, asp_l1, obspar
    from mica.archive.aca_dark import dark_cal, product, update
    from mica.products import aca_l0 as l0
    from mica.products import asp_l1 as asp
    from mica.products import obspar as par

    assert aca_l0.L0 is l0.L0 and asp_l1.ASP_L1 is asp.ASP_L1 and obspar.OBSPAR is par.OBSPAR
    assert obspar.read_obspar is par.get_obspar
    assert update.DARK is product.DARK and dark_cal.dark_id_to_date is product.dark_id_to_date
