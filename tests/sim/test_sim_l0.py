"""Simulated ACA L0 files and mission schedule against the real files and their format."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from mica.products.hdr3_calib import ad_to_degc
from mica.sim import hdr3
from mica.sim.aca_l0 import l0_dtype, plan_l0_files, write_l0_file
from mica.sim.mission import Mission, default_mission
from mica.time import to_date, to_secs
from tests.conftest import REALDATA

REAL_L0 = REALDATA / "aca_l0_2003"  # tests/data/README.md
# Two hours around obsid 3552 (the real 2003:215 files): acquisition, re-acquisition,
# tracking in all sizes, a stream break, fid IMGFUNC 3 and idle 4x4 files.
START, STOP = "2003:215:03:00:00", "2003:215:05:00:00"
# Keys whose values depend on the file's time span or on processing.
TIME_KEYS = {
    "NAXIS2", "DATE", "DATE-OBS", "DATE-END", "TSTART", "TSTOP", "STARTMJF", "STARTMNF",
    "STOPMJF", "STOPMNF", "CHECKSUM", "DATASUM", "HISTORY",
}  # fmt: skip
NSUB = {4: 1, 6: 2, 8: 4}
STEP = {4: 4, 6: 8, 8: 16}


@pytest.fixture(scope="module")
def plans():
    return plan_l0_files(START, STOP)


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory, plans) -> Path:
    out = tmp_path_factory.mktemp("sim_l0")
    for p in plans:
        write_l0_file(p, out)
    return out


def _open(path: Path) -> fits.HDUList:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fits.open(path, checksum=True)


# ---------------------------------------------------------------------------------------
# Against the real files
def test_real_file_names_reproduced(plans):
    """The plan around obsid 3552 contains every one of the 36 real file names."""
    real = {p.name for p in REAL_L0.glob("acaf*.fits.gz")}
    assert len(real) == 36
    assert real <= {p.filename for p in plans}


@pytest.mark.parametrize("name", [
    "acaf176267165N001_0_img0.fits.gz",  # 4x4 acquisition
    "acaf176267190N001_3_img0.fits.gz",  # 6x6 guide
    "acaf176267383N001_0_img0.fits.gz",  # 8x8 fid
    "acaf176267393N001_7_img0.fits.gz",  # 8x8 monitor
])  # fmt: skip
def test_headers_match_real(sim_dir, name):
    with fits.open(REAL_L0 / name) as real, _open(sim_dir / name) as sim:
        for k in (0, 1):
            # The simulation marker is the one deliberate difference from the flight files.
            assert sim[k].header["SIMULATD"] is True and sim[k].header["ORIGIN"] == "mica.sim"
            assert sim[k].header["CREATOR"] == "mica.sim.aca_l0"
            assert real[k].header["ORIGIN"] == "ASC" and "SIMULATD" not in real[k].header
            rc = real[k].header.cards
            sc = [c for c in sim[k].header.cards if c.keyword != "SIMULATD"]
            assert [c.keyword for c in rc] == [c.keyword for c in sc]
            for a, b in zip(rc, sc, strict=True):
                if a.keyword in TIME_KEYS or (k == 0 and a.keyword == "DATASUM"):
                    continue
                if a.keyword in ("ORIGIN", "CREATOR"):
                    continue  # the marker, asserted above
                # Whole card images (value layout, comment text, COMMENT blocks) agree.
                assert a.image == b.image, (k, a.image, b.image)
            for key in ("CHECKSUM", "DATASUM", "DATE", "TSTART"):
                if key == "DATASUM" and k == 0:
                    continue  # real: blank; here '0' so that astropy can verify it
                ca, cb = real[k].header.comments[key], sim[k].header.comments[key]
                assert ca.split(" updated")[0] == cb.split(" updated")[0]
        hist_r = [str(x) for x in real[1].header["HISTORY"]]
        hist_s = [str(x) for x in sim[1].header["HISTORY"]]
        assert len(hist_r) == len(hist_s) == 17
        assert hist_r[3:] == hist_s[3:] and hist_r[0] == hist_s[0]


@pytest.mark.parametrize("size", [4, 6, 8])
def test_columns_match_real(sim_dir, plans, size):
    real_name = next(
        p for p in sorted(REAL_L0.glob("*.fits.gz"))
        if fits.getdata(p, 1)["IMGRAW"].shape[1] == size
    )  # fmt: skip
    sim_name = next(p.filename for p in plans if p.imgsize == size)
    with fits.open(real_name) as real, _open(sim_dir / sim_name) as sim:
        rcols, scols = real[1].columns, sim[1].columns
        assert len(scols) == {4: 18, 6: 27, 8: 45}[size]
        for a, b in zip(rcols, scols, strict=True):
            assert (a.name, a.format, a.unit, a.bzero, a.bscale, a.dim) == (
                b.name, b.format, b.unit, b.bzero, b.bscale, b.dim
            )  # fmt: skip
        assert real[1].data.dtype == sim[1].data.dtype
        assert sim[1].header["NAXIS1"] == {4: 111, 6: 213, 8: 343}[size]
        assert l0_dtype(size).itemsize == sim[1].header["NAXIS1"]


def test_obs3552_content_like_real(sim_dir):
    """Same window origins, image scales and temperatures as the real 8x8 fid file."""
    name = "acaf176267383N001_0_img0.fits.gz"
    real = fits.getdata(REAL_L0 / name, 1)
    sim = fits.getdata(sim_dir / name, 1)
    assert len(sim) == len(real) == 729
    assert set(sim["IMGROW0"]) == {-186} and set(sim["IMGCOL0"]) == {-347}
    assert abs(np.median(sim["IMGSCALE"]) - np.median(real["IMGSCALE"])) < 40
    assert abs(np.median(sim["BGDAVG"]) - np.median(real["BGDAVG"])) < 3
    assert set(sim["TEMPCCD"]) <= {np.float32(257.95), np.float32(258.35)}
    assert np.median(sim["TEMPHOUS"]) == np.float32(288.75)
    assert np.all(sim["IMGFUNC1"] == 1) and np.all(sim["IMGFID1"] == 1)


# ---------------------------------------------------------------------------------------
# Timing (BTIM* clock, frame counters) and content rules of the real files
def test_timing_relations(sim_dir, plans):
    assert len(plans) > 50
    for p in plans:
        with _open(sim_dir / p.filename) as hdus:
            h, d = hdus[1].header, hdus[1].data
        size = d["IMGRAW"].shape[1]
        assert size == p.imgsize and len(d) == p.rows
        vcdu = d["MJF"].astype(np.int64) * 128 + d["MNF"]
        unwrapped = vcdu + (1 << 24) * np.concatenate([[0], np.cumsum(np.diff(vcdu) < 0)])
        dv = np.diff(unwrapped)
        assert np.all(dv > 0) and np.all(dv % STEP[size] == 0)
        assert np.all((d["MNF"] >= 0) & (d["MNF"] < 128)) and np.all(d["MJF"] <= 131071)

        def clock(v, h=h):
            v = np.asarray(v, dtype=np.float64)
            return h["BTIMNULL"] + h["BTIMRATE"] * v + h["BTIMDRFT"] * v * v

        start_v = h["STARTMJF"] * 128 + h["STARTMNF"]
        stop_v = h["STOPMJF"] * 128 + h["STOPMNF"]
        assert start_v == vcdu[0]
        assert (stop_v - vcdu[-1]) % (1 << 24) == 4 * (NSUB[size] - 1) + 3
        assert clock(start_v) == pytest.approx(h["TSTART"], abs=2e-6)
        assert clock(unwrapped[-1] + 4 * NSUB[size] - 1) + 0.25625 == pytest.approx(
            h["TSTOP"], abs=2e-6
        )
        t_expect = clock(unwrapped) - 1.025 - d["INTEG"].astype(np.float64) / 2
        assert np.allclose(d["TIME"], t_expect, atol=2e-6, rtol=0)
        assert np.allclose(d["END_INTEG_TIME"] - d["TIME"], d["INTEG"] / 2, atol=1e-6)
        assert d["TIME"][0] + 1.025 + d["INTEG"][0] / 2 == pytest.approx(h["TSTART"], abs=2e-6)
        # Cadence: 1.025/2.05/4.1 s except gaps (multiples) and INTEG changes.
        same = np.diff(d["INTEG"]) == 0
        dt = np.diff(d["TIME"])[same] / float(h["TIMEDEL"])
        assert np.allclose(dt, np.rint(dt), atol=1e-6) and dt.min() >= 1 - 1e-6
        assert float(h["TIMEDEL"]) == {4: 1.025, 6: 2.05, 8: 4.1}[size]
        assert p.filename == f"acaf{int(h['TSTART']):09d}N001_{p.slot}_img0.fits.gz"
        assert set(d["IMGNUM1"]) == {p.slot}
        assert set(d["QUALITY"]) <= {0, 1}


def test_date_obs_is_tt_rounded(sim_dir, plans):
    from astropy.time import Time

    p = plans[0]
    h = fits.getheader(sim_dir / p.filename, 1)
    t = Time(round(h["TSTART"]), format="cxcsec").tt.isot[:19]
    assert h["DATE-OBS"] == t
    assert h["DATE"] > h["DATE-END"]  # processed days after the data


def test_pixel_quantisation(sim_dir, plans):
    for p in plans:
        d = fits.getdata(sim_dir / p.filename, 1)
        img = d["IMGRAW"].astype(np.float64)
        scale = d["IMGSCALE"].astype(np.float64)[:, None, None]
        raw = (img + 50.0) * 32.0 / scale
        if p.imgsize == 6:
            corners = (slice(None), [0, 0, 5, 5], [0, 5, 0, 5])
            assert np.all(img[corners] == 0.0)
            raw[corners] = 0.0
        assert np.all(raw == np.rint(raw)) and raw.min() >= 0 and raw.max() <= 1023
        parked = d["IMGFUNC1"] == 0
        assert np.all(img[parked] == -28.6875) and np.all(d["IMGROW0"][parked] == 511)
        if p.imgsize >= 6:
            for col in ("TEMPCCD", "TEMPHOUS", "TEMPPRIM", "TEMPSEC"):
                b = (d[col].astype(np.float64) - 273.15) / 0.4
                assert np.allclose(b, np.rint(b), atol=1e-4)


def test_hdr3_ccd_det_therm_matches_tempccd(sim_dir, plans):
    p = next(p for p in plans if p.imgsize == 8 and p.slot == 0 and p.rows > 100)
    d = fits.getdata(sim_dir / p.filename, 1)
    b = np.stack([d[c] for c in hdr3.HD3_COLUMNS], axis=1)
    words = hdr3.bytes_to_words(b)
    assert np.all(words[:, 0] == 692) and np.all(words[:, 1] == 420)
    det = ad_to_degc(words[:, 4])
    assert np.all(np.abs(det - (d["TEMPCCD"] - 273.15)) < 0.5)
    # Documented LSB of the +5 V word gives ~4.92 V.
    assert np.all(np.abs(words[:, 5] * 0.30518e-3 - 4.92) < 0.02)


def test_hdr3_ccd_temp_slot6_in_er():
    """Guide slots run 8x8 in ERs: slot 6 carries ccd_temp, slot 7 dac and aca_temp (2012)."""
    m = default_mission()
    t0 = to_secs("2012:100")
    er = next(o for o in m.observations(t0, t0 + 4 * 86400) if o.kind == "er")
    plans = [
        p for p in plan_l0_files(er.tstart + 600, er.tstart + 1800)
        if p.imgsize == 8 and p.slot in (6, 7) and p.obsid == er.obsid
    ]  # fmt: skip
    assert {p.slot for p in plans} == {6, 7}
    for p in plans:
        times = p.row_times()
        words = hdr3.bytes_to_words(hdr3.hdr3_bytes(p.slot, times, p.row_vcdu(), m))
        ccd = m.ccd_temp_degc(times)
        if p.slot == 6:
            assert np.all(np.abs(words[:, 5] * 0.01 - ccd) < 0.02)
        else:
            aca = words[:, 3] / 256.0
            assert np.all((aca - ccd > 37.5) & (aca - ccd < 41.0))
            assert np.all((words[:, 5] >= 470) & (words[:, 5] <= 511))


def test_hdr3_word_vectors():
    b = np.array([[0x00, 0x00, 0xF0, 0x0F, 0x0F, 0xF0, 0xFF, 0xFF] + [0] * 4], np.uint8)
    assert list(hdr3.bytes_to_words(b)[0, :4]) == [0, -4081, 4080, -1]
    assert np.array_equal(hdr3.words_to_bytes(hdr3.bytes_to_words(b)), b)


def test_checksums_verify(sim_dir, plans):
    for p in plans[:20]:
        with _open(sim_dir / p.filename) as hdus:
            assert hdus[0]._checksum_valid and hdus[1]._checksum_valid
            assert hdus[1]._datasum_valid


# ---------------------------------------------------------------------------------------
# Determinism, plan independence, revisions
def test_same_plan_same_bytes(tmp_path, plans):
    p = next(p for p in plans if p.imgsize == 8 and p.rows > 500)
    a = write_l0_file(p, tmp_path / "a").read_bytes()
    again = next(q for q in plan_l0_files(p.tstart - 10, p.tstart + 10) if q.filename == p.filename)
    b = write_l0_file(again, tmp_path / "b").read_bytes()
    assert a == b


def _key(p):
    return (p.filename, p.rows, p.tstart, p.tstop, p.start_vcdu, p.stop_vcdu, p.dropped)


def test_plan_independent_of_query_window():
    t0 = to_secs("2012:001:00:00:00")
    a = {_key(p) for p in plan_l0_files(t0, t0 + 4 * 3600)}
    b = {_key(p) for p in plan_l0_files(t0 + 2 * 3600, t0 + 6 * 3600)}
    common = [p for p in plan_l0_files(t0 + 2 * 3600, t0 + 4 * 3600)]
    assert common and {_key(p) for p in common} <= a & b
    # Every file of a slot is disjoint from the next one of that slot.
    for slot in range(8):
        ps = sorted((p for p in plan_l0_files(t0, t0 + 6 * 3600) if p.slot == slot),
                    key=lambda p: p.tstart)  # fmt: skip
        for x, y in zip(ps[:-1], ps[1:], strict=True):
            assert x.tstop <= y.tstart + 1e-6


def test_revision_two(tmp_path, plans):
    p = next(p for p in plans if p.imgsize == 6 and p.rows > 100)
    r1 = write_l0_file(p, tmp_path)
    r2 = write_l0_file(p, tmp_path, revision=2)
    assert r2.name == p.filename.replace("N001", "N002")
    with _open(r1) as a, _open(r2) as b:
        ha, hb = a[1].header, b[1].header
        assert hb["REVISION"] == 2 and ha["REVISION"] == 1
        for key in ("TSTART", "TSTOP", "STARTMJF", "STARTMNF", "STOPMJF", "STOPMNF", "NAXIS2"):
            assert ha[key] == hb[key]
        assert hb["DATE"] > ha["DATE"]
        assert np.array_equal(a[1].data["TIME"], b[1].data["TIME"])
        assert not np.array_equal(a[1].data["IMGRAW"], b[1].data["IMGRAW"])
    assert all(q.filename.endswith(f"N002_{q.slot}_img0.fits.gz") for q in
               plan_l0_files(START, "2003:215:03:30:00", revision=2))  # fmt: skip


def test_file_structure_per_observation(plans):
    """Acquisition 4x4 files, fid 8x8 / guide 6x6 tracking, idle 4x4 between dwells."""
    obs = [p for p in plans if p.obsid == 3552]
    acq = [p for p in obs if p.kind == "acq"]
    assert {p.slot for p in acq} == set(range(8))
    assert all(p.imgsize == 4 and 10 <= p.rows <= 70 for p in acq)
    assert all(p.func_changes == ((0, 0),) and p.short_integ == (1, 2) for p in acq)
    track = [p for p in obs if p.kind == "track"]
    assert {p.imgsize for p in track if p.role == "fid"} == {8}
    assert {p.imgsize for p in track if p.role == "guide"} == {6}
    assert any(f == 3 for p in track for _, f in p.func_changes)  # fid lights off at the end
    assert {
        f for p in track if p.role == "monitor" and p.imgsize == 8 for _, f in p.func_changes
    } == {2}
    idle = [p for p in obs if p.kind == "idle"]
    assert idle and all(p.imgsize == 4 and 500 < p.rows < 800 for p in idle)
    # Stream break at VCDU 47746/0: all slots restart within ~2 s.
    starts = [p.tstart for p in obs if p.startmjf in (47745, 47746) and p.kind == "track"]
    assert len(starts) == 8 and max(starts) - min(starts) <= 2.05 + 1e-6


def test_perigee_8x8_size_change():
    m = default_mission()
    t0 = to_secs("2012:100")
    w0, w1 = m.perigee_8x8_windows(t0, t0 + 3 * 86400)[0]
    ps = [p for p in plan_l0_files(w0 - 3600, w0 + 600) if p.slot == 4 and p.kind == "track"]
    sizes = [p.imgsize for p in sorted(ps, key=lambda p: p.tstart)]
    assert 6 in sizes and sizes[-1] == 8


# ---------------------------------------------------------------------------------------
# Mission schedule
def test_mission_schedule():
    m = Mission(1999)
    assert 30000 < m.n_obs < 50000
    for obsid in (5438, 2121, 6000, 7000, 7001, 3552):
        assert m.observation(obsid).kind == "science"
    o = m.observation(3552)
    assert to_date(o.tstart).startswith("2003:215:03:0")
    assert m.obsid_at(o.tstart + 100) == 3552
    sci = m.obs_obsid[~m.obs_is_er]
    er = m.obs_obsid[m.obs_is_er]
    assert len(np.unique(sci)) == len(sci) and sci.max() <= 29999 and sci.min() >= 1
    assert er.min() >= 38000 and er.max() == 65535
    gaps = m.obs_tstart[1:] - m.obs_tstop[:-1]
    assert gaps.min() > 590 and gaps.max() < 1210
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2030 is past the leap-second table ("dubious year")
        assert m.obs_tstop[-1] <= m.t_end == to_secs("2030:001")
    obs = m.observations("2012:001", "2012:002")
    assert obs and all(x.tstop > to_secs("2012:001") for x in obs)
    assert [len(x.slots) for x in obs] == [8] * len(obs)
    with pytest.raises(KeyError, match="not in the simulated mission"):
        m.observation(39999)
    assert Mission(1999).obs_tstart.tobytes() == m.obs_tstart.tobytes()


def test_mission_histories():
    m = default_mission()
    orbit = np.linspace(0, 63.5 * 3600, 300)
    t03, t12, t19 = (to_secs(d) + orbit for d in ("2003:215", "2012:100", "2019:272"))
    assert np.all(np.abs(m.ccd_temp_degc(t03) + 15.0) < 0.1)
    assert -19.1 < m.ccd_temp_degc(t12).min() < m.ccd_temp_degc(t12).max() < -16.0
    assert abs(np.mean(m.ccd_temp_degc(t19)) + 9.6) < 1.0
    assert abs(np.mean(m.housing_temp_degc(t03)) - 15.6) < 0.3
    assert abs(np.mean(m.housing_temp_degc(t19)) - 31.6) < 0.5
    assert 0 < np.mean(m.bgd_level_dn(t03)) < 4 and 65 < np.mean(m.bgd_level_dn(t19)) < 80
    assert abs(np.median(m.dac_counts(t03)) - 347) < 10 and m.dac_counts(t12).min() >= 480
    d = m.aca_temp_degc(t12) - m.ccd_temp_degc(t12)
    assert 38.5 < d.min() and d.max() < 40.0
