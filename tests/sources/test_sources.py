"""Sources as plugins: the lazy registry, declared products, the simulator kept out of reach."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from astropy.io import fits

from mica.archive.aca_dark.update import DARK
from mica.products.aca_l0 import L0
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.sources import SOURCE_CHOICES, make_source, register_source, sources_for
from mica.sources.arc5gl import ARC5GL_NAMES, Arc5glSource
from mica.sources.base import SourceError
from mica.sources.cda import CDASource, NotPublic
from mica.sources.directory import DirSource


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_source_cda_in_a_fresh_process():
    out = _run(
        "from mica.sources import make_source\ns = make_source('cda')\nprint(s.spec, s.scheme)"
    )
    assert out.split() == ["cda", "cda"]


def test_no_archive_engine_or_sources_module_imports_the_simulator():
    out = _run(
        """
import importlib, pkgutil, sys
import mica.sources
loaded = [m for m in sys.modules if m.startswith(("mica.sources.", "mica.sim"))]
assert loaded == [], loaded  # the contract is the engine's: no source module
import mica.archive, mica.engine
names = ["mica.sources"]
for pkg in (mica.archive, mica.engine, mica.sources):
    names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
for name in names:
    importlib.import_module(name)
print(len(names), sorted(m for m in sys.modules if m == "mica.sim" or m.startswith("mica.sim.")))
"""
    )
    count, sims = out.split(" ", 1)
    assert int(count) > 30  # every module was imported
    assert sims.strip() == "[]"


def test_each_source_declares_its_products():
    assert sources_for("aca-l0") == ["sim", "dir", "arc5gl"]
    assert sources_for("asp-l1") == ["sim", "dir", "arc5gl", "cda"]
    assert sources_for("aca-dark") == ["sim", "dir"]
    assert CDASource.can_deliver(ASP_L1) and not CDASource.can_deliver(OBSPAR)
    assert not Arc5glSource.can_deliver(DARK) and DirSource.can_deliver("anything")
    # Source-specific names live with the source, not on the products.
    assert ARC5GL_NAMES["asp-l1"] == {"full": "asp1", "probe": "asp1{fidprops}"}
    for product in (L0, ASP_L1, OBSPAR, DARK):
        assert not [a for a in dir(product) if a.startswith(("arc5gl", "simulate"))]


def test_asking_for_a_product_a_source_cannot_deliver(tmp_path):
    with pytest.raises(NotPublic, match=r"does not distribute obspar .*sources that can: sim, dir"):
        CDASource().require(OBSPAR)
    with pytest.raises(NotPublic, match="level-0"):
        CDASource().fetch(L0, 0.0, 1.0, tmp_path)


def test_specs_plugins_and_errors(tmp_path, monkeypatch):
    with pytest.raises(SourceError, match="no source given") as err:
        make_source(None)
    assert SOURCE_CHOICES in str(err.value)
    with pytest.raises(SourceError, match="unknown source 'ftp'.*dir:PATH"):
        make_source("ftp")
    with pytest.raises(SourceError, match="dir:PATH"):
        make_source("dir")
    with pytest.raises(SourceError, match="takes no argument"):
        make_source("sim:42")
    import mica.engine.source

    monkeypatch.setattr(mica.engine.source, "_PLUGINS", {})
    register_source("mirror", DirSource)
    src = make_source(f"mirror:{tmp_path}")
    assert isinstance(src, DirSource) and src.path == tmp_path
    assert "mirror" in str(pytest.raises(SourceError, make_source, "nope").value)
    # a plugin registered with its class is offered for what that class delivers
    assert sources_for("aca-l0") == ["sim", "dir", "arc5gl", "mirror"]
    register_source("factory", lambda arg: DirSource(arg))
    assert "factory" not in sources_for("aca-l0")


def test_sim_source_knows_the_simulated_schedule():
    from mica.sim.mission import default_mission

    obs = default_mission().observation(5438)
    src = make_source("sim")
    assert src.provenance == "simulated" and src.obsid_interval(5438) == (obs.tstart, obs.tstop)
    assert src.obsid_interval(30000) is None
    with pytest.raises(SourceError, match="no per-obsid aca-l0"):
        src.obsids(L0, 0.0, 1.0)


def test_fits_writer_checksums_verify():
    from mica.sim.fits_writer import CHECKSUM_PLACEHOLDER, card, finish_header, sim_cards

    origin, creator = sim_cards("mica.sim.test")
    cards = [
        card("SIMPLE", True),
        card("BITPIX", 8),
        card("NAXIS", 0),
        origin,
        *creator,
        card("CHECKSUM", CHECKSUM_PLACEHOLDER),
        card("DATASUM", "0"),
    ]
    with fits.open(io.BytesIO(finish_header(cards, 0)), checksum=True) as hdus:
        header = hdus[0].header
        assert hdus[0].verify_checksum() == 1
        assert header["SIMULATD"] is True and header["ORIGIN"] == "mica.sim"
        assert header["CREATOR"] == "mica.sim.test"


def test_dir_fetch_looks_back_by_default_and_not_with_lookback_zero(tmp_path):
    """A file named by its start may reach into a range it began before: ``dir:`` delivers
    the files named up to the product's look-back (a day) before ``start``, and with
    ``lookback=0`` (an update's later chunks) only those named inside the range."""
    up, t0 = tmp_path / "up", 441781615.0
    up.mkdir()
    for dt in (-86400.0 - 10, -7200.0, 100.0, 3600.0):
        (up / f"acaf{int(t0 + dt)}N001_4_img0.fits.gz").write_bytes(b"x")
    src = DirSource(str(up))

    def names(dest: str, **kw) -> list[int]:
        (tmp_path / dest).mkdir()
        got = src.fetch(L0, t0, t0 + 3600.0, tmp_path / dest, **kw)
        return sorted(int(L0.name_time(p.name) - t0) for p in got)

    assert names("default") == [-7200, 100]
    assert names("zero", lookback=0.0) == [100]
    assert names("hour", lookback=7200.0) == [-7200, 100]
