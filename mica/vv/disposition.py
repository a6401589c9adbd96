"""Automatic disposition of an aspect solution: OK, WARN or BAD, with the reasons.

The original computes the numbers but never decides (its limits sit in the unused
``ObiTest``); here those limits are applied, with two fixes: slot types are
matched as they are spelled (``FID``/``GUIDE``), medians are compared by magnitude.

* fid (``FID``): ``dy_rms``, ``dz_rms`` < 0.05"; ``|dy_med|``, ``|dz_med|``, ``rad_off``
  < 0.4" -- else BAD.
* guide star (``GUIDE``, used in the solution): ``dy_rms``, ``dz_rms`` < 0.4",
  ``rad_off`` < 1.5", ``frac_dy_big``, ``frac_dz_big`` < 0.05 (the star *fails*);
  ``dy_rms``, ``dz_rms`` < 0.25" (warning level).
  Exactly one failing star -> BAD "reprocess without slot N" (the original's ReproNoDD);
  two or more -> BAD; more than two stars above the warning level -> WARN.
* a guide star or fid without centroids in an interval, a tracked slot missing from the
  props files, slots changing between intervals -> WARN.
* a common-mode excursion of the guide-star residuals (all stars moving together by more
  than 0.5" for a stretch: the solution lost the attitude, e.g. at a momentum dump) -> WARN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mica.vv.core import Obi

OK, WARN, BAD = "OK", "WARN", "BAD"
ORDER = {OK: 0, WARN: 1, BAD: 2}
DYZ_BIG_LIM = 0.7  # arcsec: a "large" deviation from the median

FID_LIMITS = {"dy_rms": 0.05, "dz_rms": 0.05, "dy_med": 0.4, "dz_med": 0.4, "rad_off": 0.4}
GUIDE_HIGH = {"dy_rms": 0.4, "dz_rms": 0.4, "rad_off": 1.5, "frac_dy_big": 0.05,
              "frac_dz_big": 0.05}  # fmt: skip
GUIDE_LOW = {"dy_rms": 0.25, "dz_rms": 0.25}
MAX_LOW_STARS = 2  # more stars than this above the warning level -> WARN
EXCURSION_LIM = 0.5  # arcsec, common-mode offset of the guide stars in one time bin
EXCURSION_SIGMA = 6.0  # and this many times the bins' robust scatter
MIN_BIN_SAMPLES = 24  # a slot needs this many samples to count
BIN_SAMPLES = 8  # samples (all stars) per time bin, at least
BIN_SECONDS = 60.0  # time bins at least this long


def _over(report: dict[str, Any], limits: dict[str, float]) -> list[str]:
    out = []
    for key, lim in limits.items():
        value = report.get(key)
        if value is None or value is np.ma.masked:
            continue
        if abs(float(value)) >= lim:
            out.append(f"{key} {float(value):.3f} >= {lim}")
    return out


def excursion(obi: Obi) -> tuple[float, float, float] | None:
    """The largest common-mode excursion of the guide stars: ``(offset arcsec, start time,
    duration s)`` when it exceeds the limits, else None."""
    devs_t, devs_y, devs_z = [], [], []
    for meta in obi.guide_list:
        if meta["type"] != "GUIDE":
            continue
        data = obi.all_slot_data.get(meta["slot"])
        if data is None or len(data["time"]) < MIN_BIN_SAMPLES:
            continue
        good = np.asarray(data["qual"]) == 0
        t, dy, dz = data["time"][good], data["dy"][good], data["dz"][good]
        if not len(t):
            continue
        devs_t.append(t)
        devs_y.append(dy - np.median(dy))
        devs_z.append(dz - np.median(dz))
    if len(devs_t) < 2:
        return None
    t = np.concatenate(devs_t)
    order = np.argsort(t, kind="stable")
    t = t[order]
    dy, dz = np.concatenate(devs_y)[order], np.concatenate(devs_z)[order]
    nbins = max(1, min(len(t) // BIN_SAMPLES, int((t[-1] - t[0]) / BIN_SECONDS) + 1))
    edges = np.linspace(t[0], t[-1] + 1e-6, nbins + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, nbins - 1)
    counts = np.bincount(idx, minlength=nbins)
    use = counts > 0
    my = np.bincount(idx, dy, nbins)[use] / counts[use]
    mz = np.bincount(idx, dz, nbins)[use] / counts[use]
    off = np.hypot(my, mz)
    scale = 1.4826 * np.median(np.abs(off - np.median(off))) + 1e-3
    lim = max(EXCURSION_LIM, np.median(off) + EXCURSION_SIGMA * scale)
    big = off > lim
    if not big.any():
        return None
    starts = edges[:-1][use]
    width = edges[1] - edges[0]
    return float(off.max()), float(starts[big][0]), float(big.sum() * width)


def disposition(obi: Obi) -> dict[str, Any]:
    """``{"status": OK|WARN|BAD, "reasons": [...], "repro_without": slot or None,
    "warn_slots": [...], "bad_slots": [...]}`` for an `Obi`."""
    reasons: list[tuple[str, str]] = []
    bad_slots: list[int] = []
    warn_slots: list[int] = []
    failing: dict[int, list[str]] = {}
    low: dict[int, list[str]] = {}
    for key in sorted(obi.slot_report, key=int):
        rep = obi.slot_report[key]
        slot = int(key)
        if "n_pts" not in rep:
            continue
        if rep["type"] == "FID":
            over = _over(rep, FID_LIMITS)
            if over:
                reasons.append((BAD, f"fid slot {slot}: " + ", ".join(over)))
                bad_slots.append(slot)
        elif rep["type"] == "GUIDE" and rep.get("cel_loc_flag", 1):
            over = _over(rep, GUIDE_HIGH)
            if over:
                failing[slot] = over
            else:
                warn = _over(rep, GUIDE_LOW)
                if warn:
                    low[slot] = warn
    if len(failing) == 1:
        slot, over = next(iter(failing.items()))
        reasons.append(
            (
                BAD,
                f"guide slot {slot} alone exceeds the limits ({', '.join(over)}): "
                f"reprocess without that star",
            )  # fmt: skip
        )
    elif failing:
        for slot, over in failing.items():
            reasons.append((BAD, f"guide slot {slot}: " + ", ".join(over)))
    bad_slots += sorted(failing)
    if len(low) > MAX_LOW_STARS:
        reasons.append(
            (
                WARN,
                f'{len(low)} guide stars above the 0.25" RMS warning level: slots {sorted(low)}',
            )  # fmt: skip
        )
        warn_slots += sorted(low)
    for slot, k in obi.missing_in_interval:
        reasons.append((WARN, f"slot {slot} has no centroids in aspect interval {k}"))
        warn_slots.append(slot)
    for slot in obi.omitted_slots:
        reasons.append((WARN, f"slot {slot} is tracked but missing from GSPROPS/FIDPROPS"))
        warn_slots.append(slot)
    for err in obi.errors:
        if "changes" in err or "differ" in err:
            reasons.append((WARN, f"inconsistent aspect intervals: {err}"))
    exc = excursion(obi)
    if exc is not None:
        off, t0, dur = exc
        reasons.append(
            (
                WARN,
                f'guide stars move together by {off:.2f}" for ~{dur:.0f} s from '
                f"{t0:.0f} (attitude excursion, momentum dump?)",
            )  # fmt: skip
        )
    status = max((r[0] for r in reasons), key=ORDER.get, default=OK)
    return {
        "status": status,
        "reasons": [f"{level}: {text}" for level, text in reasons],
        "repro_without": next(iter(failing)) if len(failing) == 1 else None,
        "bad_slots": sorted(set(bad_slots)),
        "warn_slots": sorted(set(warn_slots)),
    }
