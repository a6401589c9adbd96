"""Start-up: the reader modules import none of the heavy libraries a fetch does not need.

Each check runs in a fresh interpreter, so nothing the test session imported counts.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

HEAVY = ["scipy", "blosc2", "astropy.table", "astropy.io.fits", "mica.engine.ingest"]


def _modules_after(code: str) -> dict[str, bool]:
    """Which of `HEAVY` are in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    report = f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    probe = f"{code}\nimport json, sys\n{report}"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import mica.archive.aca_hdr3",
        "import mica.archive.aca_l0, mica.archive.aca_hdr3",
        "import mica.engine.colstore",
    ],
)
def test_reader_import_leaves_heavy_libraries_out(code):
    loaded = _modules_after(code)
    assert not any(loaded.values()), f"{code} imported {[m for m, v in loaded.items() if v]}"


def test_cli_help_imports_no_subcommand_machinery():
    """``mica --help`` lists every command without importing the archive engine."""
    loaded = _modules_after(
        "import sys\nfrom mica.cli import main\nsys.argv = ['mica', '--help']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
    )
    assert not any(loaded.values()), loaded


def test_lazy_fits_is_astropy_fits():
    """The read path's lazy ``fits`` is the real module once used."""
    from astropy.io import fits as real

    from mica._lazy import fits

    assert fits.BinTableHDU is real.BinTableHDU and "astropy.io.fits" in repr(fits)


def test_thermistor_spline_matches_scipy():
    """The numpy not-a-knot spline equals scipy's CubicSpline over every A/D count and
    between them, NaN outside the calibrated range."""
    from scipy.interpolate import CubicSpline

    from mica.products import hdr3_calib

    ref = CubicSpline(
        hdr3_calib.AD_COUNTS, hdr3_calib.AD_DEGC, bc_type="not-a-knot", extrapolate=False
    )
    x = np.concatenate([np.arange(0.0, 17000.0), np.linspace(2000.0, 16000.0, 20001), [np.nan]])
    got, want = hdr3_calib.ad_to_degc(x), ref(x)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).sum() > 3000  # outside 2085..15728
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10, equal_nan=True)
    assert hdr3_calib.degc_to_ad(hdr3_calib.ad_to_degc(5000.0)) == 5000
