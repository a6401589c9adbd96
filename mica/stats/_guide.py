"""The per-observation guide-star statistics, on the AOACASEQ time grid.

As the original, all MSIDs go on the ``AOACASEQ`` sample times with a union of bad flags;
unlike it, the RACQ/SRCH run counts are 0 when there is no such sample (the original reports
1), and a slot without Kalman-phase samples keeps its defaults instead of failing the obsid.
"""

from __future__ import annotations

import numpy as np

from mica.stats._acq import on_grid, residuals
from mica.stats.guide_stats import DTYPE
from mica.stats.inputs import InputError, Provider
from mica.time import conversion_scope, to_date

__all__ = ["GUIDE_MSIDS", "calc_guide_stats", "runs"]

_SCALAR = ["AOACASEQ", "AOPCADMD", "AOFSTAR", "AOATTQT1", "AOATTQT2", "AOATTQT3", "AOATTQT4"]
_SLOT = ["AOACFCT", "AOACMAG", "AOACYAN", "AOACZAN", "AOACICC", "AOACIDP", "AOACIIR", "AOACIMS",
         "AOACIQB", "AOACISP"]  # fmt: skip
#: the MSIDs the guide statistics read
GUIDE_MSIDS = _SCALAR + [f"{n}{s}" for n in _SLOT for s in range(8)]
_FLAGS = {"f_common_col": "AOACICC", "f_sat_pix": "AOACISP", "f_def_pix": "AOACIDP",
          "f_ion_rad": "AOACIIR", "f_mult_star": "AOACIMS", "f_quad_bound": "AOACIQB"}  # fmt: skip
_AGASC_COLS = {"color": "COLOR1", "ra": "RA_PMCORR", "dec": "DEC_PMCORR"}


def runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of consecutive True values (none -> empty)."""
    m = np.r_[False, np.asarray(mask, bool), False]
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return edges[1::2] - edges[::2]


def calc_guide_stats(provider: Provider, obsid: int, obi: int) -> np.ndarray:
    """The guide rows of one observation (`DTYPE`, slot order)."""
    mv = provider.maneuver(obsid)
    cat = provider.catalog(obsid, mv.guide_start)
    cat = cat[np.isin(cat["type"], [b"GUI", b"BOT"])]
    if len(cat) == 0:
        raise InputError(f"obsid {obsid}: the star catalog has no GUI/BOT rows")
    tlm = provider.telemetry(GUIDE_MSIDS, mv.kalman_start, mv.dwell_stop)
    t, v = on_grid(tlm)
    npnt = np.char.strip(v["AOPCADMD"].astype("U4")) != "NPNT"
    stop = float(t[np.argmax(npnt)]) if npnt.any() else mv.dwell_stop
    keep = t < stop
    t, v = t[keep], {k: x[keep] for k, x in v.items()}
    if len(t) < 2:
        raise InputError(
            f"obsid {obsid}: no Kalman-phase telemetry after {to_date(mv.kalman_start)}"
        )
    q = np.stack([v[f"AOATTQT{k}"].astype(float) for k in range(1, 5)], axis=-1)
    agasc = provider.agasc([int(i) for i in cat["id"]], float(t[0]))
    ccd = provider.telemetry(["AACCCDPT"], mv.kalman_start, mv.dwell_stop)["AACCCDPT"]
    good = ccd.vals[~ccd.bads]
    tmean, tmax = (float(good.mean()), float(good.max())) if len(good) else (np.nan, np.nan)
    from mica.archive.aca_dark.dark_model import get_warm_fracs

    with conversion_scope():
        warm = float(get_warm_fracs(100, mv.start, tmean))
    rows = np.zeros(len(cat), DTYPE)
    for name in DTYPE.names:
        if name.startswith("aoacmag_"):
            rows[name] = 99.0
    rows["obsid"], rows["obi"] = obsid, obi
    rows["kalman_tstart"], rows["npnt_tstop"] = mv.kalman_start, stop
    rows["kalman_datestart"], rows["npnt_datestop"] = to_date(mv.kalman_start), to_date(stop)
    rows["revision"] = "0.6"
    rows["n100_warm_frac"], rows["tccd_mean"], rows["tccd_max"] = warm, tmean, tmax
    strip = {k: np.char.strip(x.astype("U4")) for k, x in v.items() if x.dtype.kind in "US"}
    kalman_ok = (strip["AOACASEQ"] == "KALM") & (strip["AOPCADMD"] == "NPNT")
    kalman_ok &= (strip["AOFSTAR"] == "GUID") & (t > t[0] + 60.0)
    for k, (c, a) in enumerate(zip(cat, agasc)):
        r = rows[k]
        s = int(c["slot"])
        for name in ("slot", "idx", "type", "yang", "zang", "sz", "mag"):
            r[name] = c[name]
        for name in DTYPE.names[DTYPE.names.index("agasc_id") : DTYPE.names.index("acqq4") + 1]:
            r[name] = a[_AGASC_COLS.get(name, name.upper())]
        fct = strip[f"AOACFCT{s}"]
        n = len(fct)
        trak = fct == "TRAK"
        r["n_samples"], r["n_track"] = n, int(trak.sum())
        r["f_track"] = trak.mean()
        for state in ("RACQ", "SRCH", "NONE"):
            r[f"f_{state.lower()}"] = np.mean(fct == state)
        r["n_racq_interv"] = len(runs(fct == "RACQ"))
        r["n_srch_interv"] = len(runs(fct == "SRCH"))
        if not trak.any():
            rows[k] = r
            continue
        ok = trak & (strip[f"AOACIIR{s}"] == "OK") & (strip[f"AOACISP{s}"] == "OK")
        r["n_kalman"] = int(ok.sum())
        r["no_track"] = (n - trak.sum()) / n
        r["f_obc_bad"] = (trak.sum() - ok.sum()) / trak.sum()
        for col, msid in _FLAGS.items():
            r[col] = np.mean(strip[f"{msid}{s}"][trak] == "ERR")
        tr, nt = runs(trak), runs(~trak)
        r["n_track_interv"], r["n_long_track_interv"] = len(tr), int(np.sum(tr > 60))
        r["n_long_no_track_interv"] = int(np.sum(nt > 60))
        kal = ok & kalman_ok
        if not kal.any():
            rows[k] = r
            continue
        yan, zan = v[f"AOACYAN{s}"].astype(float), v[f"AOACZAN{s}"].astype(float)
        dy, dz = residuals(q[kal], a["RA_PMCORR"], a["DEC_PMCORR"], yan[kal], zan[kal])
        dr = np.hypot(dy, dz)
        for name, x in (("dy", dy), ("dz", dz), ("dr", dr)):
            r[f"{name}_min"], r[f"{name}_max"] = x.min(), x.max()
            r[f"{name}_mean"], r[f"{name}_std"] = x.mean(), x.std()
        r["dr_5th"], r["dr_95th"] = np.percentile(dr, [5, 95])
        mag = v[f"AOACMAG{s}"].astype(float)[kal]
        r["aoacmag_min"], r["aoacmag_mean"], r["aoacmag_max"] = mag.min(), mag.mean(), mag.max()
        r["aoacmag_std"] = mag.std()
        for p, x in zip((5, 16, 50, 84, 95), np.percentile(mag, [5, 16, 50, 84, 95])):
            r[f"aoacmag_{p}th"] = x
        r["aoacyan_mean"], r["aoaczan_mean"] = yan[kal].mean(), zan[kal].mean()
        for x in ("0.3", "1", "3", "5"):
            r[f"f_within_{x}"] = np.mean(dr < float(x))
        r["f_outside_5"] = np.mean(dr > 5)
        rows[k] = r
    return rows[np.argsort(rows["slot"], kind="stable")]
