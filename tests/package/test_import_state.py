"""Importing mica, and mica's own calls, leave the user's process settings as they were.

Each check runs in a fresh interpreter, so nothing imported or set by the test session counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import REALDATA

# What mica imports from elsewhere; imported before the state is recorded, because some change
# it at their own import (numpy adds warnings filters; blosc2 sets KMP_DUPLICATE_LIB_OK and
# ME_DSL_JIT_LIBTCC_PATH) and that is not mica's to undo.
DEPENDENCIES = """
import sqlite3
import numpy, scipy.optimize, scipy.stats, erfa
import astropy.io.fits, astropy.table, astropy.time, astropy.units
from astropy.utils import iers
import h5py, hdf5plugin, blosc2
import matplotlib, matplotlib.pyplot
import click, rich.progress, httpx, platformdirs
"""


def _run(body: str, **env: str) -> dict:
    """Run ``body`` in a fresh interpreter (after `DEPENDENCIES`); it prints one JSON line."""
    code = DEPENDENCIES + textwrap.dedent(body)
    environ = {k: v for k, v in os.environ.items() if k != "BLOSC_NTHREADS"} | env
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_changes_no_global_state():
    out = _run(
        """
        import json, os, pkgutil, warnings
        before = (iers.conf.auto_download, list(warnings.filters), dict(os.environ))
        import mica, mica.archive, mica.engine.colstore, mica.time
        names = sorted(
            m.name for m in pkgutil.walk_packages(mica.archive.__path__, "mica.archive.")
        )
        for name in names:
            __import__(name)
        after = (iers.conf.auto_download, list(warnings.filters), dict(os.environ))
        print(json.dumps({
            "modules": names,
            "auto_download": [before[0], after[0]],
            "new_filters": [repr(f) for f in after[1] if f not in before[1]],
            "filters_same": before[1] == after[1],
            "env_changes": sorted(set(after[2].items()) ^ set(before[2].items())),
        }))
        """
    )
    assert {"mica.archive.aca_l0", "mica.archive.aca_hdr3", "mica.archive.asp_l1"} <= set(
        out["modules"]
    )
    assert "mica.archive.aca_dark.dark_cal" in out["modules"]  # subpackages walked too
    assert out["auto_download"] == [True, True]
    assert out["new_filters"] == [] and out["filters_same"]
    assert out["env_changes"] == []


def test_conversion_scoped_to_the_call():
    """A 2030 date: no ErfaWarning, astropy's leap-second check (where it would download) runs
    with auto_download False, and afterwards the setting and the filters are the user's."""
    out = _run(
        """
        import json, warnings
        from astropy.time import Time
        import mica.time

        seen = []
        real_auto_open = iers.LeapSeconds.auto_open.__func__

        def recording_auto_open(cls, files=None):  # astropy's own code, setting noted
            seen.append(iers.conf.auto_download)
            return real_auto_open(cls, files)

        iers.LeapSeconds.auto_open = classmethod(recording_auto_open)
        filters = list(warnings.filters)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            secs = mica.time.to_secs("2030:001")
            date = mica.time.to_date(secs + 86400.0)
            again = mica.time.to_secs(["2030:001", "2031:001:12:00:00"])
            inner_filters = list(warnings.filters)
        checks = list(seen)
        # The user's own conversion of the same date warns as astropy always does.
        with warnings.catch_warnings(record=True) as user_caught:
            warnings.simplefilter("always")
            reference = Time("2030:001", format="yday", scale="utc").cxcsec
        print(json.dumps({
            "checks": checks,
            "auto_download_after": iers.conf.auto_download,
            "mica_warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
            "user_warns": any("dubious year" in str(w.message) for w in user_caught),
            "filters_same": list(warnings.filters) == filters,
            "inner_filters_same": inner_filters[1:] == filters,
            "secs": secs, "reference": float(reference), "date": date,
            "again": [float(x) for x in again],
        }))
        """
    )
    assert out["checks"] == [False]  # checked once, offline
    assert out["auto_download_after"] is True
    assert out["mica_warnings"] == []
    assert out["user_warns"]  # the filter was mica's, for mica's calls only
    assert out["filters_same"] and out["inner_filters_same"]
    assert out["secs"] == out["reference"] == out["again"][0]
    assert out["date"] == "2030:002:00:00:00.000"
    assert out["again"][1] - out["again"][0] == 365 * 86400.0 + 43200.0


def test_store_calls_single_threaded_and_restore_blosc_settings(tmp_path):
    """A user who asked Blosc for more threads (the variable and blosc2's count): mica's ingest
    (store writes) and fetches (h5py, blosc2 and c-blosc reads) make every Blosc call with
    BLOSC_NTHREADS=1, which both libraries take at each call, and the user's settings are
    back afterwards."""
    out = _run(
        f"""
        import json, os
        from pathlib import Path

        calls = {{"blosc2": [], "h5py write": [], "h5py read": [], "c-blosc": []}}

        def recording(kind, func):  # the real call, with the variable it ran under noted
            def call(*args, **kwargs):
                calls[kind].append(os.environ.get("BLOSC_NTHREADS"))
                return func(*args, **kwargs)
            return call

        blosc2.decompress = recording("blosc2", blosc2.decompress)
        h5py.Group.create_dataset = recording("h5py write", h5py.Group.create_dataset)
        h5py.Dataset.__getitem__ = recording("h5py read", h5py.Dataset.__getitem__)
        blosc2.set_nthreads(3)
        from mica.archive import aca_l0
        from mica.products.aca_l0 import L0
        from mica.engine import stored_blocks
        from mica.engine.time_update import update_archive
        c_blosc = stored_blocks._c_blosc()
        for name in ("blosc_getitem", "blosc_decompress_ctx"):
            setattr(c_blosc, name, recording("c-blosc", getattr(c_blosc, name)))
        root = {str(tmp_path / "aca0")!r}
        report = update_archive(
            L0, "dir:{REALDATA / "aca_l0_2003"}", "2003:214", "2003:216", data_root=root
        )
        data = aca_l0.get_slot_data(
            "2003:215", "2003:216", slot=0, data_root=root, columns=["TIME", "IMGRAW"]
        )
        print(json.dumps({{
            "ingested": len(report.ingested), "rows": len(data),
            "chunks": len(list((Path(root) / "store").rglob("*.h5"))),
            "calls": {{kind: sorted(set(v)) for kind, v in calls.items()}},
            "ncalls": {{kind: len(v) for kind, v in calls.items()}},
            "settings": [os.environ.get("BLOSC_NTHREADS"), blosc2.nthreads, blosc2.set_nthreads(3)],
        }}))
        """,
        BLOSC_NTHREADS="2",
        MICA_WORKERS="1",  # ingest in this process
    )
    assert out["ingested"] == 36 and out["chunks"] > 0 and out["rows"] > 1000
    ncalls = out["ncalls"]  # a short read's blocks are decoded by blosc2 or c-blosc's getitem
    assert ncalls["h5py write"] and ncalls["h5py read"] and ncalls["blosc2"] + ncalls["c-blosc"]
    assert all(v == ["1"] for v in out["calls"].values() if v), out["calls"]
    assert out["settings"] == ["2", 3, 3]
