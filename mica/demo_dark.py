"""The dark-current part of `mica demo`: a handful of calibrations over the mission, two plots.

`demo_dark` archives ~10 simulated calibrations spread over 1999-2025 through the real update
path (replicas from the simulated upstream, CCD temperatures from header-3 ``ccd_temp`` in the
L0 archive), then draws the warm-pixel fraction over the mission (raw and scaled to -15 C, as
the mica documentation's plot) and the dark-current model's prediction over the archived
points. Only the L0 data the temperatures need are archived: slots 6-7 (8x8, carrying
header-3) around each calibration, taken from the simulated upstream through a ``dir:``
source.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the demo writes PNG files; no screen needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mica.archive.aca_dark import dark_cal, dark_model  # noqa: E402
from mica.archive.aca_dark.update import HDR3_PAD, update_aca_dark  # noqa: E402
from mica.engine.time_update import update_archive  # noqa: E402
from mica.plot import archive_is_simulated, cxctime2plotdate, plot_cxctime, save_figure  # noqa: E402
from mica.products.aca_l0 import L0  # noqa: E402
from mica.progress import progress_bar  # noqa: E402
from mica.time import frac_year, to_date, to_secs  # noqa: E402

# Decimal years of the calibrations the demo archives (the nearest simulated ones).
DEMO_YEARS = (1999.6, 2002.5, 2004.8, 2007.0, 2009.6, 2012.3, 2014.6, 2017.0, 2019.4, 2022.2,
              2024.6)  # fmt: skip
WARM_THRESHOLD = 100.0  # e-/s
T_REF = -15.0  # degC, as the documentation's plot
# The observed trend the spec quotes (fraction above 100 e-/s at -15 C).
OBSERVED = ((2000.0, 0.023), (2014.0, 0.145))


def demo_cal_plans() -> list:
    """The simulated calibrations nearest to DEMO_YEARS."""
    from mica.sim.aca_dark import dark_cal_schedule

    plans = dark_cal_schedule()
    years = np.asarray(frac_year(np.array([p.tstart for p in plans])))
    picks = sorted({int(np.argmin(np.abs(years - y))) for y in DEMO_YEARS})
    return [plans[i] for i in picks]


def _l0_windows(plans: list, archive_root: Path, work: Path, progress: bool) -> float:
    """Archive the slot 6-7 8x8 L0 files around each calibration; returns seconds spent."""
    from mica.sim.aca_dark import write_hdr3_l0_files

    tic = time.perf_counter()
    # Before 2000 the temperature is the original's guess: no L0 needed.
    plans = [p for p in plans if p.tstop >= to_secs("2000:001")]
    if plans:
        # The upstream folder is scratch: ingest copies the files into the archive.
        shutil.rmtree(work, ignore_errors=True)
        write_hdr3_l0_files(plans, work, pad=HDR3_PAD + 60.0)
        # One ingest of everything (one chunk): the validation pool starts once.
        t0, t1 = plans[0].tstart - 3600.0, plans[-1].tstop + 3600.0
        with progress_bar("update aca-l0 (slots 6-7 near the calibrations)", progress) as bar:
            update_archive(
                L0, f"dir:{work}", t0, t1, days_at_once=(t1 - t0) / 86400.0 + 2.0,
                data_root=archive_root / "aca0", progress=bar,
            )  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
    return time.perf_counter() - tic


def archive_calibrations(plans: list, archive_root: Path, progress: bool) -> list:
    """Archive the calibrations of ``plans`` (with the L0 their temperatures need) into
    ``archive_root/aca_dark``; returns the refusals."""
    archive_root = Path(archive_root)
    _l0_windows(plans, archive_root, archive_root / "upstream-l0-dark", progress)
    refused = []
    for plan in plans:
        day = to_date(plan.tstart)[:8]
        with progress_bar(f"update aca-dark ({plan.dark_id})", enabled=progress) as bar:
            report = update_aca_dark(
                day, plan.tstop + 1.0, source="sim", data_root=archive_root / "aca_dark",
                l0_root=archive_root / "aca0", progress=bar,
            )  # fmt: skip
        refused += list(report.failed.values())
    return refused


def warm_fractions(data_root: Path) -> dict[str, np.ndarray]:
    """Per archived calibration: time, ccd_temp, fraction above 100 e-/s raw and at -15 C."""
    rows = []
    for dark_id in dark_cal.get_dark_cal_dirs(data_root=data_root):
        props = dark_cal.get_dark_cal_props(dark_id, include_image=True, data_root=data_root)
        scale = dark_cal.dark_temp_scale(props["ccd_temp"], T_REF)
        image = props["image"]
        n_raw = np.count_nonzero(image > WARM_THRESHOLD) / image.size
        n_ref = np.count_nonzero(image * scale > WARM_THRESHOLD) / image.size
        start = props.get("start") or props.get("datestart")
        rows.append((dark_id, to_secs(start), props["ccd_temp"], n_raw, n_ref))
    ids, t, temp, raw, ref = zip(*rows) if rows else ((),) * 5
    return {
        "id": np.array(ids),
        "time": np.array(t, dtype=float),
        "ccd_temp": np.array(temp, dtype=float),
        "raw": np.array(raw),
        "ref": np.array(ref),
    }


def plot_warm_fraction(
    wf: dict[str, np.ndarray], out: Path, simulated: bool = False, keep: list | None = None
) -> Path:
    """The documentation's plot: N100 fraction over the mission, raw and scaled to -15 C."""
    fig, ax = plt.subplots(figsize=(9, 5))
    plot_cxctime(wf["time"], wf["raw"], "o-r", ax=ax, label="raw (at the calibration's T)")
    plot_cxctime(wf["time"], wf["ref"], "s-b", ax=ax, label=f"scaled to {T_REF:g} C")
    for year, frac in OBSERVED:
        plot_cxctime(f"{int(year)}:182", [frac], "k*", ax=ax, ms=12)
    ax.plot([], [], "k*", ms=12, label="observed trend (spec)")
    ax.set_ylabel(f"pixels > {WARM_THRESHOLD:g} e-/s (fraction of the CCD)")
    ax.set_title("ACA warm-pixel fraction from the archived dark calibrations")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return save_figure(fig, out / "dark_warm_fraction.png", simulated, keep)


def plot_model(
    wf: dict[str, np.ndarray], out: Path, simulated: bool = False, keep: list | None = None
) -> tuple[Path, dark_model.AmplitudeFit]:
    """Model N100 fraction at -15 C over the mission, with the archived points and a fit.

    The fitted amplitude is within a percent of 1, so the fitted curve would hide under the
    model line: the lower panel shows archived / model, where the fit is a visible level.
    """
    # Fit only where the model was fitted (2007-2017): outside it the model extrapolates.
    years_pts = np.asarray(frac_year(wf["time"]))
    inside = (years_pts >= 2007.0) & (years_pts <= 2017.0)
    points = list(zip(wf["time"][inside], wf["ccd_temp"][inside], wf["raw"][inside]))
    fit = dark_model.fit_model_amplitude(points, WARM_THRESHOLD)
    t = np.linspace(to_secs("1999:230"), to_secs("2029:300"), 300)
    model = dark_model.get_warm_fracs(WARM_THRESHOLD, t, T_REF)
    years = np.asarray(frac_year(t))
    fig, (ax, ax_r) = plt.subplots(
        2, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    fitted = (years >= 2007.0) & (years <= 2017.0)
    plot_cxctime(t, np.where(fitted, model, np.nan), "-g", ax=ax, lw=2)
    plot_cxctime(t, np.where(fitted, np.nan, model), "--g", ax=ax)
    ax.plot([], [], "-g", lw=2, label="model (fit range 2007-2017)")
    ax.plot([], [], "--g", label="model extrapolated")
    fit_label = f"model x {fit.factor:.3f} (fit to the 2007-2017 points)"
    plot_cxctime(t, model * fit.factor, "-m", ax=ax, lw=1, zorder=3, label=fit_label)
    plot_cxctime(wf["time"], wf["ref"], "ob", ax=ax, label=f"archived, scaled to {T_REF:g} C")
    ax.set_ylabel(f"pixels > {WARM_THRESHOLD:g} e-/s at {T_REF:g} C (fraction)")
    ax.set_title("Dark-current model against the archived calibrations")
    ax.set_xlabel("")  # shared axis: the x label is under the lower panel
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)

    ratio = wf["ref"] / dark_model.get_warm_fracs(WARM_THRESHOLD, wf["time"], T_REF)
    # The scale of the fit range: the early points (model extrapolated) would flatten it.
    span = max(float(np.max(np.abs(ratio[inside] - 1.0), initial=0.0)), 3 * fit.factor_err, 0.01)
    y_lo, y_hi = 1.0 - 2.5 * span, 1.0 + 2.5 * span
    plot_cxctime(wf["time"], np.clip(ratio, y_lo, y_hi), "ob", ax=ax_r, label="archived / model")
    off = ratio > y_hi
    if off.any():
        plot_cxctime(
            wf["time"][off], np.full(off.sum(), y_hi), "^r", ax=ax_r, ms=9,
            label="above the scale (extrapolated)",
        )  # fmt: skip
    ax_r.set_ylim(y_lo - 0.1 * span, y_hi + 0.1 * span)
    plot_cxctime(t, np.ones_like(t), "-g", ax=ax_r, lw=2, label="model")
    lo, hi = fit.factor - fit.factor_err, fit.factor + fit.factor_err
    ax_r.fill_between(cxctime2plotdate(t), lo, hi, color="m", alpha=0.25, label="fit +- 1 sigma")
    plot_cxctime(t, np.full_like(t, fit.factor), "-m", ax=ax_r, label="fit amplitude")
    ax_r.set_ylabel("archived / model (ratio)")
    ax_r.grid(alpha=0.3)
    ax_r.legend(fontsize=7, ncol=3, loc="lower right")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return save_figure(fig, out / "dark_model_vs_archive.png", simulated, keep), fit


def demo_dark(archive_root: Path, out: Path, progress: bool = True) -> list[str]:
    """Archive the demo calibrations into ``archive_root/aca_dark``, write two plots into
    ``out``; return the lines to print."""
    archive_root, out = Path(archive_root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_root = archive_root / "aca_dark"
    plans = demo_cal_plans()
    tic = time.perf_counter()
    refused = archive_calibrations(plans, archive_root, progress)
    t_dark = time.perf_counter() - tic
    wf = warm_fractions(data_root)
    simulated = archive_is_simulated(archive_root)
    path1 = plot_warm_fraction(wf, out, simulated)
    path2, fit = plot_model(wf, out, simulated)
    lines = [
        f"dark calibrations: {len(wf['id'])} archived in {data_root} "
        f"(with the L0 their temperatures need, {t_dark:.1f} s)",
        f"{'id':<8} {'ccd_temp':>8} {'source':>8} {'N100 raw':>9} {'at -15 C':>9} {'model':>7}",
    ]
    for k, dark_id in enumerate(wf["id"]):
        props = dark_cal.get_dark_cal_props(dark_id, data_root=data_root)
        sources = sorted({r["ccd_temp_source"] for r in props.get("replicas", [])})
        model = dark_model.get_warm_fracs(WARM_THRESHOLD, wf["time"][k], T_REF)
        lines.append(
            f"{dark_id:<8} {wf['ccd_temp'][k]:8.2f} {'/'.join(sources):>8} "
            f"{wf['raw'][k]:9.4f} {wf['ref'][k]:9.4f} {model:7.4f}"
        )
    lines.append(
        f"model amplitude fit to the archived 2007-2017 points: x{fit.factor:.3f} "
        f"+- {fit.factor_err:.3f}"
    )
    lines += [f"refused: {r}" for r in refused]
    lines += ["dark plots written:", f"  {path1}", f"  {path2}"]
    return lines
