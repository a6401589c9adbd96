"""The per-observation acquisition statistics, on one explicit time grid.

`calc_acq_stats` takes its inputs from a `mica.stats.inputs.Provider`; it differs from the
original in one place on purpose: every MSID is put on the ``AOACASEQ`` sample times
(nearest sample, a sample bad when any MSID is bad there, as the guide sibling does) instead of
assuming that all MSIDs share one grid.
"""

from __future__ import annotations

import numpy as np

from mica import quaternion
from mica.stats.acq_stats import DTYPE
from mica.stats.inputs import InputError, Provider, Series
from mica.time import conversion_scope, to_date

__all__ = ["ACQ_MSIDS", "on_grid", "calc_acq_stats", "residuals"]

_SCALAR = ["AOACASEQ", "AOPCADMD", "AOFSTAR", "AOATTQT1", "AOATTQT2", "AOATTQT3", "AOATTQT4"]
_SLOT = ["AOACQID", "AOACFCT", "AOACMAG", "AOACYAN", "AOACZAN", "AOACIDP", "AOACISP",
         "AOACIMS", "AOACIIR"]  # fmt: skip
#: the MSIDs the acquisition statistics read
ACQ_MSIDS = _SCALAR + [f"{n}{s}" for n in _SLOT for s in range(8)]
R2A = 206264.81
_AGASC_COLS = {"color1": "COLOR1", "mag_err": "MAG_ACA_ERR"}


def on_grid(tlm: dict[str, Series], ref: str = "AOACASEQ") -> tuple[np.ndarray, dict]:
    """All series on the times of ``ref`` (nearest sample within 1.1 of its spacing).

    Returns the times kept (no MSID bad or missing there) and the values by name.
    """
    t = tlm[ref].times
    ok = ~tlm[ref].bads
    vals = {}
    for name, s in tlm.items():
        if len(s.times) == 0:
            raise InputError(f"no {name} telemetry")
        j = np.clip(np.searchsorted(s.times, t), 1, len(s.times) - 1)
        j = np.where(np.abs(s.times[j - 1] - t) <= np.abs(s.times[j] - t), j - 1, j)
        step = np.median(np.diff(s.times)) if len(s.times) > 1 else 1.0
        ok &= (np.abs(s.times[j] - t) <= 1.1 * step) & ~s.bads[j]
        vals[name] = s.vals[j]
    return t[ok], {k: v[ok] for k, v in vals.items()}


def residuals(q: np.ndarray, ra: float, dec: float, yan: np.ndarray, zan: np.ndarray):
    """(dy, dz) arcsec of observed angles against those predicted from attitudes ``q``."""
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    e = np.array([np.cos(dec_r) * np.cos(ra_r), np.cos(dec_r) * np.sin(ra_r), np.sin(dec_r)])
    d = np.einsum("kji,j->ki", quaternion.to_transform(q), e)
    yag = np.arctan2(d[:, 1], d[:, 0]) * R2A
    zag = np.arctan2(d[:, 2], d[:, 0]) * R2A
    return yan - yag, zan - zag


def _inverse(q: np.ndarray) -> np.ndarray:
    return np.concatenate([-q[..., :3], q[..., 3:]], axis=-1)


def calc_acq_stats(provider: Provider, obsid: int, obi: int) -> np.ndarray:
    """The acquisition rows of one observation (`DTYPE`, slot order; known_bad False).

    Raises `InputError` naming what is missing (catalog, telemetry, maneuver).
    """
    mv = provider.maneuver(obsid)
    cat = provider.catalog(obsid, mv.acq_start)
    if len(cat) == 0:
        raise InputError(f"obsid {obsid}: empty star catalog")
    if abs(_secs(cat["mp_starcat_time"][0]) - mv.start) > 300:
        raise InputError(f"obsid {obsid}: the star catalog is not within 300 s of its maneuver")
    cat = cat[np.isin(cat["type"], [b"ACQ", b"BOT"])]
    cat = cat[np.argsort(cat["idx"], kind="stable")]
    if len(cat) == 0:
        raise InputError(f"obsid {obsid}: the star catalog has no ACQ/BOT rows")
    pos_for_slot = {int(s): k for k, s in enumerate(cat["slot"])}
    tlm = provider.telemetry(ACQ_MSIDS, mv.acq_start, mv.dwell_start + 100.0)
    t, v = on_grid(tlm)
    guide_t = mv.guide_start
    acq = (t > mv.acq_start) & (t < guide_t + 1.0)
    guide = t >= guide_t - 1.0
    if acq.sum() < 3 or guide.sum() < 3 or not np.any(t[guide] <= guide_t + 3.0):
        raise InputError(
            f"obsid {obsid}: telemetry gap around the guide transition "
            f"({to_date(guide_t)}): {int(acq.sum())} acquisition and {int(guide.sum())} "
            "guide samples"
        )
    q = np.stack([v[f"AOATTQT{k}"].astype(float) for k in range(1, 5)], axis=-1)
    g = np.flatnonzero(guide)
    q1, q2 = q[g[0]], q[g[2]]
    dq = quaternion.multiply(q2, _inverse(q1))
    dot = min(float(np.sum(q1 * q2)), 1.0)
    angle = np.degrees(2 * np.arccos(dot))
    one_shot = min(angle, 360 - angle) * 3600
    q_corr = q.copy()
    pre = t < guide_t + 1.0
    q_corr[pre] = quaternion.multiply(dq, q[pre])
    agasc = provider.agasc([int(i) for i in cat["id"]], float(t[0]))
    ccd = provider.telemetry(["AACCCDPT"], guide_t - 250.0, guide_t + 250.0)["AACCCDPT"]
    ccd_temp = float(np.mean(ccd.vals[~ccd.bads])) if np.any(~ccd.bads) else np.nan
    from mica.archive.aca_dark.dark_model import get_warm_fracs

    with conversion_scope():
        warm = float(get_warm_fracs(100, guide_t, ccd_temp))
    rows = np.zeros(len(cat), DTYPE)
    rows["obsid"], rows["obi"] = obsid, obi
    rows["acq_start"], rows["guide_start"] = to_date(mv.acq_start), to_date(guide_t)
    rows["guide_tstart"], rows["one_shot_length"], rows["revision"] = guide_t, one_shot, "1.0"
    rows["n100_warm_frac"], rows["ccd_temp"] = warm, ccd_temp
    ia, ig = np.flatnonzero(acq), g[0]
    for k, (c, a) in enumerate(zip(cat, agasc)):
        s = int(c["slot"])
        r = rows[k]
        for name in ("slot", "idx", "type", "yang", "zang", "halfw", "mag"):
            r[name] = c[name]
        for name in DTYPE.names[DTYPE.names.index("agasc_id") : DTYPE.names.index("acqq4") + 1]:
            r[name] = a[_AGASC_COLS.get(name, name.upper())]
        yan, zan = v[f"AOACYAN{s}"].astype(float), v[f"AOACZAN{s}"].astype(float)
        mag = v[f"AOACMAG{s}"].astype(float)
        dy, dz = residuals(q, a["RA_PMCORR"], a["DEC_PMCORR"], yan, zan)
        cdy, cdz = residuals(q_corr, a["RA_PMCORR"], a["DEC_PMCORR"], yan, zan)
        r["acqid"] = _strip(v[f"AOACQID{pos_for_slot[s]}"][ig]) == "ID"
        fct = np.char.strip(v[f"AOACFCT{s}"][ia].astype("U4"))
        trak = fct == "TRAK"
        if trak.any():
            cdr = np.hypot(cdy[ia][trak], cdz[ia][trak])
            r["star_tracked"], r["spoiler_tracked"] = cdr.min() < 5.0, cdr.max() >= 5.0
            for name, x in (("cdy", cdy), ("cdz", cdz), ("mag", mag)):
                xt = x[ia][trak]
                r[f"max_trak_{name}"], r[f"min_trak_{name}"] = xt.max(), xt.min()
                r[f"mean_trak_{name}"] = xt.mean()
            r["n_trak_interv"] = int(np.sum(~trak[:-1] & trak[1:]))
        if len(fct) >= 2 and fct[-2] == "TRAK":
            j = ia[-2]
            r["dy"], r["dz"], r["cdy"], r["cdz"] = dy[j], dz[j], cdy[j], cdz[j]
            r["mag_obs"], r["yang_obs"], r["zang_obs"] = mag[j], yan[j], zan[j]
            r["img_func"] = "star" if np.hypot(cdy[j], cdz[j]) < 5.0 else "spoiler"
        else:
            r["img_func"] = fct[-2] if len(fct) >= 2 else "NONE"
        for col, msid in (("def_pix", "AOACIDP"), ("sat_pix", "AOACISP"),
                          ("mult_star", "AOACIMS"), ("ion_rad", "AOACIIR")):  # fmt: skip
            r[col] = _strip(v[f"{msid}{s}"][ig]) == "ERR"
        rows[k] = r
    return rows[np.argsort(rows["slot"], kind="stable")]


def anomalies(rows: np.ndarray, pad: float = 16.0) -> list[str]:
    """ "Star in the wrong search box" messages for rows with |dy| or |dz| >= halfw + pad."""
    out = []
    for r in rows:
        if r["img_func"] in (b"NONE", b"SRCH"):
            continue
        lim = r["halfw"] + pad
        if abs(r["dy"]) < lim and abs(r["dz"]) < lim:
            continue
        box = (abs(r["yang_obs"] - rows["yang"]) <= rows["halfw"] + pad) & (
            abs(r["zang_obs"] - rows["zang"]) <= rows["halfw"] + pad
        )
        what = (
            f"Acquisition Anomaly. Star for slot {r['slot']} actually in box "
            f"{int(rows['slot'][box][0])}"
            if box.any()
            else "Does not appear to be classic star-in-wrong-box anomaly"
        )
        out.append(
            f"obsid {r['obsid']} slot {r['slot']}: {what} (expected {r['yang']:.1f}, "
            f"{r['zang']:.1f}; observed {r['yang_obs']:.1f}, {r['zang_obs']:.1f}; halfw "
            f"{r['halfw']}; dy {r['dy']:.1f} dz {r['dz']:.1f})"
        )
    return out


def _strip(x) -> str:
    return x.decode().strip() if isinstance(x, bytes) else str(x).strip()


def _secs(date) -> float:
    from mica.time import to_secs

    with conversion_scope():
        return float(to_secs(_strip(date)))
