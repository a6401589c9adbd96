"""The calls the aspect team's other packages make into mica, each run on a simulated archive.

`CALLS` lists them (package, call, status) as found in those packages' public sources;
``docs/migration.rst`` shows the same table (`test_migration_lists_every_call`). Each call
marked same is run below as the package makes it, with the columns or keys the package
then reads, on the documentation's archive (`mica.sim.build.build_docs_archive`) plus guide
statistics; the CDA web services are run against a local server in ``test_cda_services``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from tests.conftest import REPO_ROOT

SAME = "same"
STARCHECK = (
    "same, over the archive's ``starcheck/starcheck.db3`` as the original built it; the load "
    "that ran is found from the database's own tables, not kadi (see :mod:`mica.starcheck`)"
)
#: (package, call, status): status "same", or why the call cannot run here
CALLS = [
    ("proseco", "aca_dark.get_dark_cal_image(date=..., select='before', t_ccd_ref=..., "
     "aca_image=True)", "same; the image is ``mica.archive.aca_image.ACAImage`` (an ndarray "
     "with ``.aca`` indexing, ``row0``/``col0``), not chandra_aca's class: proseco keeps it "
     "as returned (it wraps only a dark it is given that is not chandra_aca's ``ACAImage``) "
     "and writes its bad pixels through ``.aca``"),
    ("proseco", "aca_dark.get_dark_cal_image(date=..., select='nearest', t_ccd_ref=..., "
     "aca_image=False)", SAME),
    ("sparkles", "cda.get_ocat_web(obsid=...)", SAME),
    ("sparkles", "cda.get_ocat_local(obsid=...)", SAME),
    ("agasc", "aca_l0.get_slot_data(start, stop, slot=..., centered_8x8=True, columns=[...])",
     SAME),
    ("agasc", "aca_dark.dark_cal.get_dark_cal_image(...)", SAME),
    ("chandra_aca", "aca_dark.get_dark_cal_props(date, 'nearest', include_image=True, "
     "aca_image=False)", "same; the properties keep their calibration's schema: ``t_ccd`` "
     "in those ACDC made, ``ccd_temp`` in the classic ones (which ``mica update aca-dark`` "
     "writes; chandra_aca's dark_subtract reads either)"),
    ("chandra_aca", "aca_l0.get_slot_data(start, stop, imgsize=[4, 6, 8], slot=..., "
     "columns=[...], centered_8x8=True)", SAME),
    ("chandra_aca", "aca_dark.get_dark_cal_image('1999:223:12:00:00', select='nearest', "
     "t_ccd_ref=-14)", SAME),
    ("chandra_aca", "asp_l1.get_files(start=..., stop=..., content=['ACACENT'])", SAME),
    ("chandra_aca", "asp_l1.get_atts(start=..., stop=...)", SAME),
    ("chandra_aca", "asp_l1.get_atts_from_files(asol, acal, aqual, filter=True)", SAME),
    ("chandra_aca", "mica.starcheck.get_starcheck_catalog_at_date(date)", STARCHECK),
    ("starcheck", "mica.stats.acq_stats.get_stats()", SAME),
    ("starcheck", "mica.stats.guide_stats.get_stats()", SAME),
    ("starcheck", "aca_dark.get_dark_cal_props(date=..., include_image=True, aca_image=True)",
     SAME),
    ("aca_weekly_report", "acq_stats.get_stats()['obsid', 'agasc_id', 'acqid', 'mag_obs', "
     "'dy', 'dz', 'cdy', 'cdz', 'sat_pix', 'ion_rad']", SAME),
    ("aca_weekly_report", "guide_stats.get_stats()['obsid', 'agasc_id', 'type', 'f_track', "
     "'f_within_3', 'f_within_5', 'dy_mean', 'dz_mean']", SAME),
    ("aca_weekly_report", "mica.starcheck", STARCHECK),
    ("ska_trend", "acq_stats.get_stats()['guide_tstart', 'img_func', 'dy', 'dz', 'halfw']",
     SAME),
    ("ska_trend", "aca_dark.get_dark_cal_image(date, select='nearest', t_ccd_ref=...)", SAME),
    ("ska_trend", "mica.vv.get_rms_data()", "same; ``mean_aacccdpt`` is NaN (no engineering "
     "archive here), so the warm fraction vv_trend looks up from it cannot be computed"),
    ("ska_trend", "cda.get_ocat_local()", SAME),
    ("ska_trend", "mica.starcheck.get_starcheck_catalog(obsid)", STARCHECK),
    ("Ska web API", "aca_dark.dark_cal.get_dark_cal_id(date=...)", SAME),
    ("Ska web API", "obspar.get_obspar(obsid)", SAME),
]  # fmt: skip

DATE = "2012:200"  # after the archive's one calibration, 2012:131
L0_START, L0_STOP = "2012:125:00:00:00", "2012:125:00:30:00"
OBSID = 10369


@pytest.fixture(scope="module")
def archive(docs_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation's archive plus guide statistics (``mica update guide-stats``)."""
    from mica.engine.registry import get

    root = tmp_path_factory.mktemp("downstream") / "archive"
    shutil.copytree(docs_archive, root, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICA_ARCHIVE", str(root))
        report = get("guide-stats").update()
    assert report.done and not report.failed, report.summary()
    return root


@pytest.fixture(autouse=True)
def _archive(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICA_ARCHIVE", str(archive))


def test_migration_lists_every_call():
    """The table of docs/migration.rst: one row (package, call, status) per call."""
    text = " ".join((REPO_ROOT / "docs" / "migration.rst").read_text().split())
    for package, call, status in CALLS:
        assert f"* - {package} - ``{call}`` - {status}" in text, call


def test_proseco_dark_maps():
    from mica.archive.aca_dark import get_dark_cal_image
    from mica.archive.aca_image import ACAImage  # not chandra_aca's class (see CALLS)

    dark = get_dark_cal_image(date=DATE, select="before", t_ccd_ref=-10.0, aca_image=True)
    assert isinstance(dark, ACAImage) and dark.shape == (1024, 1024)
    assert dark.aca[-512, -512] == dark[0, 0]  # ACA coordinates, as proseco indexes them
    plain = get_dark_cal_image(date=DATE, select="nearest", t_ccd_ref=-10.0, aca_image=False)
    assert type(plain) is np.ndarray and np.array_equal(plain, np.asarray(dark))
    assert (dark.row0, dark.col0) == (-512, -512)
    dark.aca[-245 : 0 + 1, 454 : 454 + 1] = 700000  # a bad-pixel region, as proseco marks them
    assert np.all(dark[267:513, 966] == 700000) and dark[266, 966] != 700000
    again = get_dark_cal_image(date=DATE, select="before", t_ccd_ref=-10.0, aca_image=True)
    assert np.array_equal(np.asarray(again), plain)  # the marks stay in proseco's copy


def test_agasc_magnitude_telemetry():
    from mica.archive import aca_l0
    from mica.archive.aca_dark.dark_cal import get_dark_cal_image

    cols = ["TIME", "END_INTEG_TIME", "IMGSIZE", "IMGROW0", "IMGCOL0", "TEMPCCD", "IMGRAW"]
    data = aca_l0.get_slot_data(L0_START, L0_STOP, slot=3, centered_8x8=True, columns=cols)
    assert len(data) > 0 and data["IMGRAW"].shape[1:] == (8, 8)
    assert np.all(np.diff(data["END_INTEG_TIME"].data) > 0)
    assert get_dark_cal_image(DATE, select="before").shape == (1024, 1024)


def test_chandra_aca_dark_subtract():
    from mica.archive import aca_l0
    from mica.archive.aca_dark import get_dark_cal_props

    dc = get_dark_cal_props(DATE, "nearest", include_image=True, aca_image=False)
    assert dc["image"].shape == (1024, 1024)
    assert "t_ccd" in dc or "ccd_temp" in dc  # dark_subtract reads either
    cols = ["TIME", "QUALITY", "IMGFUNC1", "IMGRAW", "IMGSIZE", "IMGROW0", "IMGCOL0", "BGDAVG"]
    cols.append("INTEG")
    for slot in range(8):
        dat = Table(
            aca_l0.get_slot_data(
                L0_START, L0_STOP, imgsize=[4, 6, 8], slot=slot, columns=cols, centered_8x8=True
            )
        )
        imgrow0_8x8 = dat["IMGROW0"].copy()
        imgrow0_8x8[dat["IMGSIZE"] == 6] -= 1  # as dark_subtract recentres them
        dat.rename_column("IMGRAW", "IMG")
        assert dat["IMG"].shape[1:] == (8, 8) and hasattr(dat["IMGROW0"], "mask")


def test_chandra_aca_synthetic_dark():
    from mica.archive.aca_dark import get_dark_cal_image

    dark = get_dark_cal_image("1999:223:12:00:00", select="nearest", t_ccd_ref=-14).ravel()
    assert dark.shape == (1024 * 1024,)


def test_chandra_aca_centroid_residuals():
    from astropy.table import vstack

    from mica.archive import asp_l1
    from mica.time import to_secs

    start, stop = "2012:125", "2012:127"
    files = sorted(asp_l1.get_files(start=start, stop=stop, content=["ACACENT"]))
    acen = vstack([Table.read(f) for f in files], metadata_conflicts="silent")
    ok = (acen["alg"] == 8) & (acen["status"] == 0) & (acen["time"] >= to_secs(start))
    assert np.count_nonzero(ok) > 0 and {"slot", "ang_y", "ang_z"} <= set(acen.colnames)
    atts, times, recs = asp_l1.get_atts(start=to_secs(start), stop=to_secs(stop))
    assert atts.shape[1] == 4 and len(times) == len(atts)
    assert {int(r["OBS_ID"]) for r in recs} == {OBSID}
    asol, acal, aqual = (
        asp_l1.get_files(OBSID, content=[c]) for c in ("ASPSOL", "ACACAL", "ASPQUAL")
    )
    atts2, times2, _ = asp_l1.get_atts_from_files(asol, acal, aqual, filter=True)
    assert np.array_equal(times2, times)


def test_starcheck_statistics_and_dark():
    import mica.stats.acq_stats
    import mica.stats.guide_stats
    from mica.archive import aca_dark

    assert len(mica.stats.acq_stats.get_stats()) > 0
    assert len(mica.stats.guide_stats.get_stats()) > 0
    props = aca_dark.get_dark_cal_props(date=DATE, include_image=True, aca_image=True)
    assert props["image"].shape == (1024, 1024) and np.isfinite(props["ccd_temp"])


def test_weekly_report_and_trend_columns():
    import mica.stats.acq_stats
    import mica.stats.guide_stats

    acqs = mica.stats.acq_stats.get_stats()
    obsid = acqs["obsid"][0]
    acq_cols = ["agasc_id", "acqid", "mag_obs", "dy", "dz", "cdy", "cdz", "sat_pix", "ion_rad"]
    assert len(Table(acqs[acqs["obsid"] == obsid])[acq_cols]) > 0
    late = acqs[acqs["guide_tstart"] > 0]
    anom = (late["img_func"] != "NONE") & (np.abs(late["dy"]) >= late["halfw"] + 20)
    assert anom.dtype == bool  # the wrong-box selection runs
    guides = mica.stats.guide_stats.get_stats()
    gui_cols = ["agasc_id", "type", "f_track", "f_within_3", "f_within_5", "dy_mean", "dz_mean"]
    assert len(Table(guides[guides["obsid"] == guides["obsid"][0]])[gui_cols]) > 0


def test_trend_vv_rms_data():
    from mica.vv import get_rms_data

    rms = Table(get_rms_data())
    rms = rms[(rms["isdefault"] == 1) & (rms["used"] == 1) & (rms["type"] != "FID")]
    assert len(rms) > 0
    for col in ("tstart", "mean_aacccdpt", "mag_med", "dz_rms"):
        assert col in rms.colnames


def test_web_api_calls():
    from mica.archive import obspar
    from mica.archive.aca_dark import dark_cal

    assert dark_cal.get_dark_cal_id(date=DATE) == "2012131"
    pars = obspar.get_obspar(OBSID)
    assert isinstance(pars, dict) and int(pars["obs_id"]) == OBSID  # a string, as before


def test_starcheck_catalogs(archive: Path):
    """The starcheck calls on the original's database, copied into the archive."""
    import mica.starcheck
    from tests.archive.test_starcheck import build_starcheck_db

    folder = archive / "starcheck"
    folder.mkdir(exist_ok=True)
    if not (folder / "starcheck.db3").exists():
        build_starcheck_db(folder / "starcheck.db3")
    sc = mica.starcheck.get_starcheck_catalog_at_date("2017:044:12:00:00")  # chandra_aca
    guides = sc["cat"][
        (sc["cat"]["slot"] == 6) & ((sc["cat"]["type"] == "GUI") | (sc["cat"]["type"] == "BOT"))
    ]
    assert list(guides["id"]) == [454432416] and sc["obs"]["obsid"] == 19372
    sc = mica.starcheck.get_starcheck_catalog(19372)  # ska_trend, aca_weekly_report
    assert sc["obs"] is not None and len(sc["cat"]) > 0 and len(sc["manvr"]) > 0
