"""The cheta-like MSID interface shared by header-3 items and L0 columns."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mica.archive import aca_hdr3, aca_l0, msid  # noqa: E402
from mica.archive.aca_image import ACAImage  # noqa: E402

START, STOP = "2003:215:03:00:00", "2003:215:05:00:00"


def test_one_class_for_header3_and_l0(real_l0_archive):
    hdr3 = aca_hdr3.MSID("ccd_det_therm", START, STOP, data_root=real_l0_archive)
    l0 = aca_l0.MSID("tempccd", 0, START, STOP, data_root=real_l0_archive)
    for m in (hdr3, l0):
        assert isinstance(m, msid.MSID)
        assert len(m) == len(m.vals) == len(m.times) == len(m.bads) > 1000
        assert m.bads.dtype == bool
        assert np.array_equal(m.bads, np.ma.getmaskarray(m.vals))
    assert (hdr3.unit, l0.unit) == ("degC", "K")  # L0 columns keep their FITS unit
    assert hdr3.desc.startswith("A/D CCD detector therm") and "TEMPCCD of slot 0" in l0.desc
    assert hdr3.bads.any()  # rows before decom breaks
    text = repr(hdr3)
    assert text.startswith("<MSID ccd_det_therm (074) [A/D CCD detector therm")
    assert f"{START}.000 .. {STOP}.000: {len(hdr3)} samples ({hdr3.bads.sum()} bad)" in text
    assert text.endswith("unit 'degC'>")
    assert repr(l0).endswith(f"{len(l0)} samples ({l0.bads.sum()} bad), unit 'K'>")
    good = hdr3.filter_bad(copy=True)
    assert len(good) == (~hdr3.bads).sum() and not good.bads.any()
    # the header-3 thermistor and the L0 TEMPCCD column agree (K vs degC, unit stated)
    same = np.isin(l0.times, good.times) & ~l0.bads
    tempc = l0.vals[same] - 273.15
    assert np.max(np.abs(good.vals[np.isin(good.times, l0.times[same])] - tempc)) < 0.5


def test_plot_has_labels(real_l0_archive):
    m = aca_hdr3.MSID("ccd_det_therm", START, STOP, data_root=real_l0_archive)
    fig, ax = plt.subplots()
    assert m.plot(ax=ax) is ax
    assert ax.get_ylabel() == "ccd_det_therm (degC)" and ax.get_title().startswith("A/D CCD")
    (line,) = ax.get_lines()
    assert len(line.get_xdata()) == (~m.bads).sum()
    plt.close(fig)


@pytest.mark.parametrize("filter_bad", [True, False])
def test_msidset_interpolate(real_l0_archive, filter_bad):
    names = ["ccd_det_therm", "ad_15v_ps", "ad_lc_therm"]  # slots 0, 1 and 2
    s = aca_hdr3.MSIDset(names, START, STOP, data_root=real_l0_archive)
    raw = {k: s[k].copy().filter_bad() for k in names}
    assert s.interpolate(dt=10.0, filter_bad=filter_bad) is s
    steps = np.diff(s.times) / 10.0  # 1 each, or more where a bad grid time was dropped
    assert np.allclose(steps, np.round(steps)) and steps.min() == pytest.approx(1.0)
    assert len(s.times) > 300 and (filter_bad or np.allclose(steps, 1.0))
    for name in names:
        m = s[name]
        assert np.array_equal(m.times, s.times) and len(m.vals) == len(s.times)
        # every good grid value is the value of the nearest good original sample
        near = np.abs(raw[name].times[:, None] - s.times[None, :]).argmin(axis=0)
        good = ~m.bads
        assert np.array_equal(np.ma.getdata(m.vals)[good], raw[name].vals[near][good])
        assert np.all(np.abs(raw[name].times[near][good] - s.times[good]) <= 10.0)
    if filter_bad:
        assert not any(s[k].bads.any() for k in names)
    else:
        assert s.times[0] == s.tstart and any(s[k].bads.any() for k in names)
    l0 = aca_l0.MSIDset("TEMPCCD", START, STOP, slot=1, data_root=real_l0_archive)
    assert isinstance(l0, msid.MSIDset) and list(l0) == ["TEMPCCD"]
    l0.interpolate(dt=60.0)
    assert np.allclose(np.diff(l0.times), 60.0) and l0["TEMPCCD"].unit == "K"
    with pytest.raises(ValueError, match="dt must be a positive"):
        l0.interpolate(dt=0)


def _synthetic() -> msid.MSIDset:
    s = msid.MSIDset()
    s.tstart, s.tstop = 0.0, 80.0
    times = np.arange(0.0, 81.0, 10.0)
    vals = np.ma.masked_array(times / 10, mask=[0, 0, 0, 1, 1, 1, 0, 0, 0])
    s["a"] = msid.MSID("a", vals, times, unit="V")
    return s


def test_interpolate_synthetic():
    s = _synthetic().interpolate(dt=5.0, filter_bad=False)
    assert s.times.tolist() == list(np.arange(0.0, 80.0, 5.0))
    # nearest good sample (ties: the earlier); bad farther than max(dt, spacing) = 10 s
    expect = [0, 0, 1, 1, 2, 2, 2, None, None, None, 6, 6, 6, 6, 7, 7]
    assert s["a"].vals.tolist() == expect and s["a"].bads.sum() == 3
    s = _synthetic().interpolate(dt=5.0)  # filter_bad: the bad grid times are dropped
    assert 40.0 not in s.times and len(s["a"]) == 13 and not s["a"].bads.any()


def test_aca_image_repr_shows_row0_col0():
    img = ACAImage(np.arange(4.0).reshape(2, 2), row0=-100, col0=37)
    assert repr(img).startswith("ACAImage([[0., 1.],")
    assert repr(img).endswith("row0=-100, col0=37)")
    assert str(img).endswith("row0=-100 col0=37") and repr(img.sum()) == "6.0"
