"""``mica fetch ...``: data out of the archive (to the screen, CSV or a plot)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mica.cli._group import main, user_error
from mica.cli._output import output_file, plot_file, say_no_data, write_csv
from mica.errors import MicaError


@main.group()
def fetch() -> None:
    """Read data out of the archive (to the screen, CSV or a plot)."""


START = click.option(
    "--start", required=True, help="Start time (e.g. 2012:125 or 2012:125:06:30:00; UTC)."
)
STOP = click.option("--stop", required=True, help="Stop time (same forms as --start).")


def _csv_option(what: str) -> Callable:
    return click.option(
        "--csv",
        "csv_path",
        type=click.Path(),
        callback=output_file,
        default=None,
        help=f"Write {what} to this CSV file (floats as stored: float32 as float32).",
    )


@fetch.command("aca-l0")
@START
@STOP
@click.option("--slot", type=click.IntRange(0, 7), required=True, help="ACA slot (0-7).")
@click.option(
    "--columns",
    default="TIME,IMGSIZE,TEMPCCD,BGDAVG",
    show_default=True,
    help="Comma-separated L0 columns, in the order to show them (a date follows TIME).",
)
@_csv_option("the rows")
def fetch_aca_l0(start, stop, slot, columns, csv_path) -> None:
    """One slot's L0 columns over a time range (to the screen, or a CSV file).

    A range without data is not an error: a line on stderr says so, the exit status is 0 and
    a CSV file gets its header only. Exit status 1 on an error.
    """
    from astropy.table import Table

    from mica.archive import aca_l0
    from mica.time import to_date

    cols = list(dict.fromkeys(c.strip().upper() for c in columns.split(",") if c.strip()))
    if not cols:
        raise click.ClickException("--columns names no column (e.g. --columns TIME,TEMPCCD)")
    try:
        data = aca_l0.get_slot_data(start, stop, slot, columns=cols)
    except (MicaError, ValueError) as err:
        raise user_error(err) from err
    table = Table()
    for name in cols:  # the reader gives the archive's column order: the asked one here
        table[name] = data[name]
        if name == "TIME":
            table["date"] = to_date(data["TIME"])
    if len(table) == 0:
        say_no_data(f"L0 of slot {slot}", start, stop)
    if csv_path:
        write_csv(table, csv_path)
    elif len(table):
        table.pprint(max_lines=40, max_width=200)


def _stats_rows(name: str, obsid: int, csv_path: str | None, unfiltered: bool) -> None:
    """Print or write one obsid's rows of a statistics table (``acq-stats``/``guide-stats``)."""
    from astropy.table import Table

    from mica.engine.registry import get

    product = get(name).load()
    try:
        rows = product.table().read(f"obsid == {obsid}")
    except (MicaError, ValueError) as err:
        raise user_error(err) from err
    if not unfiltered:
        rows = rows[~rows["known_bad"]]
    if len(rows) == 0:
        raise click.ClickException(
            f"obsid {obsid}: no rows in {product.table().path} (run 'mica update {name} "
            f"--obsid {obsid}'; 'mica check' lists the failed observations)"
        )
    table = Table(rows)
    if csv_path:
        write_csv(table, csv_path)
    else:
        table.pprint(max_lines=40, max_width=200)


@fetch.command("acq-stats")
@click.option("--obsid", type=int, required=True, help="The obsid.")
@_csv_option("the rows")
@click.option("--all", "unfiltered", is_flag=True, help="Also the known_bad rows.")
def fetch_acq_stats(obsid, csv_path, unfiltered) -> None:
    """The acquisition statistics rows of one obsid (one per ACQ/BOT star)."""
    _stats_rows("acq-stats", obsid, csv_path, unfiltered)


@fetch.command("guide-stats")
@click.option("--obsid", type=int, required=True, help="The obsid.")
@_csv_option("the rows")
@click.option("--all", "unfiltered", is_flag=True, help="Also the known_bad rows.")
def fetch_guide_stats(obsid, csv_path, unfiltered) -> None:
    """The guide statistics rows of one obsid (one per GUI/BOT star)."""
    _stats_rows("guide-stats", obsid, csv_path, unfiltered)


@fetch.command("hdr3")
@click.argument("names", nargs=-1, required=True)
@START
@STOP
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(),
    callback=plot_file,
    default=None,
    help="Write a plot of the items against time (PNG, or the format of the file name).",
)
@_csv_option("the items on their common time grid")
@click.option(
    "--files",
    "from_files",
    is_flag=True,
    help="Scan the L0 FITS files instead of the columnar store (reference path).",
)
@click.option(
    "--stat",
    type=click.Choice(["5min", "daily"]),
    default=None,
    help="cheta's statistics of each item over 328 s or daily bins instead of its samples "
    "(one row per bin: mean, min, max, std, samples and, daily, percentiles).",
)
def fetch_hdr3(names, start, stop, plot_path, csv_path, from_files, stat) -> None:
    """Header-3 pseudo-MSIDs (e.g. ccd_temp dac aca_temp) over a time range.

    Prints each item's count and range; --csv and --plot write them. A range without
    samples is not an error: a line on stderr says so, the exit status is 0, a CSV file gets
    its header only and the plot spans the range, marked "no data". Exit status 1 on an
    error.
    """
    import numpy as np
    from astropy.table import Table

    from mica.archive import aca_hdr3
    from mica.time import to_date

    try:
        msids = aca_hdr3.MSIDset(list(names), start, stop, use_store=not from_files, stat=stat)
    except (MicaError, KeyError, ValueError) as err:
        raise user_error(err) from err
    table = Table({"time": msids.times, "date": to_date(msids.times) if len(msids.times) else []})
    if len(table) == 0:
        say_no_data(f"header-3 {', '.join(names)}", start, stop)
    if stat:
        _stat_columns(table, msids)
    for name, msid in msids.items() if not stat else ():
        table[name] = msid.vals
        table[name].unit = msid.unit or None
        valid = msid.vals.compressed() if hasattr(msid.vals, "compressed") else msid.vals
        summary = (
            f"min {valid.min():.4g} median {np.median(valid):.4g} max {valid.max():.4g}"
            if len(valid)
            else "no valid samples"
        )
        if len(table):
            click.echo(
                f"{name} ({msid.hdr3_msid}, {msid.unit}): {len(valid)} valid of "
                f"{len(msid.vals)}; {summary}"
            )
    if csv_path:
        write_csv(table, csv_path)
    if plot_path:
        _plot_hdr3(msids, names, start, stop, plot_path, stat)


def hdr3_figure(msids: Any, names: tuple[str, ...], start: str, stop: str, stat: str | None) -> Any:
    """The figure of ``fetch hdr3 --plot``: one panel per item against time, sharing one
    time axis labelled once, under the lower panel; statistics as their means (a point per
    bin, joined where bins follow each other) over each bin's min..max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mica.plot import cxctime2plotdate, plot_cxctime
    from mica.time import time_range

    # the tight layout engine keeps the panels below a simulated-data mark
    fig, axes = plt.subplots(
        len(msids), 1, figsize=(10, 2.5 * len(msids) + 1), sharex=True, squeeze=False,
        layout="tight",
    )  # fmt: skip
    for ax, (name, msid) in zip(axes[:, 0], msids.items()):
        if stat and len(msid.times):  # means over the min..max band of each bin
            msid.plot(".-", ax=ax, simulated=False, interactive=False, lw=1, ms=4)
            ax.set_title("")
            ax.legend(loc="best", fontsize="small")
        else:
            plot_cxctime(msid.times, msid.vals, ".", ax=ax, ms=1)
        ax.set_ylabel(f"{name} ({msid.unit})")
        ax.grid(alpha=0.3)
        if not len(msid.times):  # the asked range, said empty (not an axis around 1970)
            ax.set_xlim(*cxctime2plotdate(list(time_range(start, stop))))
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
            ax.set_yticks([])
    for ax in axes[:-1, 0]:
        ax.set_xlabel("")  # the shared time axis is labelled under the lower panel only
    what = f"{stat} statistics of " if stat else ""
    axes[0, 0].set_title(f"Header-3 {what}{', '.join(names)}, {start} to {stop}")
    return fig


def _plot_hdr3(
    msids: Any, names: tuple[str, ...], start: str, stop: str, path: Path, stat: str | None
) -> None:
    """`hdr3_figure` saved at ``path`` (one error line if it cannot be)."""
    import matplotlib.pyplot as plt

    from mica.config import archive_root
    from mica.plot import archive_is_simulated, save_figure

    fig = hdr3_figure(msids, names, start, stop, stat)
    try:
        save_figure(fig, path, archive_is_simulated(archive_root()))
    except (OSError, ValueError) as err:  # a folder not writable, a format not known
        plt.close(fig)
        raise click.ClickException(f"cannot write {path}: {err}") from err
    click.echo(f"plot written to {path}")


def _stat_columns(table, msids) -> None:
    """Each item's bins as columns ``<name>_mean``, ``_min``, ``_max``, ``_std``,
    ``_samples`` (and daily ``_p01`` ... ``_p99``) of ``table``, whose rows are the bins
    any item has (masked where an item has none), and a summary line per item."""
    import numpy as np

    for name, msid in msids.items():
        rows = np.searchsorted(msids.times, msid.times)
        quantiles = [c for c in msid.stat_columns if c.startswith("p")]
        for column in ["means", "mins", "maxes", "stds", "samples", *quantiles]:
            values = getattr(msid, column)
            full = np.ma.masked_all(len(msids.times), dtype=values.dtype)
            full[rows] = values
            label = f"{name}_{_STAT_SUFFIX.get(column, column[:-1])}"
            table[label] = full
            table[label].unit = None if column == "samples" else msid.unit or None
        summary = (
            f"min {msid.mins.min():.4g} mean of means {np.mean(msid.means):.4g} "
            f"max {msid.maxes.max():.4g}"
            if len(msid)
            else "no valid samples"
        )
        click.echo(
            f"{name} ({msid.hdr3_msid}, {msid.unit}): {len(msid)} {msid.stat} bins of "
            f"{int(msid.samples.sum())} samples; {summary}"
        )


#: cheta's attribute -> the CSV column's suffix, where dropping the plural's "s" is not it.
_STAT_SUFFIX = {"maxes": "max", "samples": "samples"}
