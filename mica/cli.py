"""The ``mica`` command line: update, check, fetch, demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import numpy as np

from mica import cli_obsid  # also registers the cda source
from mica.archive.aca_dark import update as update_aca_dark
from mica.engine.check import check_archive
from mica.engine.lock import ArchiveBusy
from mica.engine.provenance import provenance_line
from mica.engine.update import update_archive
from mica.progress import progress_bar, run_update_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--archive",
    type=click.Path(file_okay=False),
    default=None,
    help="Archive root (default: $MICA_ARCHIVE or a per-user data folder).",
)
def main(archive: str | None) -> None:
    """mica: retrieve, archive and serve Chandra ACA telemetry and aspect products."""
    if archive:
        os.environ["MICA_ARCHIVE"] = str(Path(archive).resolve())


def _products() -> dict:
    """Every product archive `mica check` looks at, by command name."""
    from mica.archive.l0_format import L0

    return {L0.name: L0, **cli_obsid.obsid_products()}


@main.group()
def update() -> None:
    """Fill an archive from an upstream source, incrementally and safely."""


def _run_update(product, source, start, stop, data_root, days_at_once, wait, quiet) -> None:
    run_update_command(
        f"update {product.name}",
        quiet,
        lambda bar: update_archive(
            product,
            source,
            start,
            stop,
            days_at_once=days_at_once,
            data_root=data_root,
            progress=bar,
            wait=wait,
        ),
        failed=lambda report: bool(report.rejected),
    )


def _update_options(func):
    func = click.option("--quiet", is_flag=True, help="No progress bar.")(func)
    func = click.option(
        "--wait",
        type=float,
        default=0.0,
        help="Seconds to wait for another running update (default: exit).",
    )(func)
    func = click.option(
        "--days-at-once", type=float, default=30.0, show_default=True, help="Chunk length in days."
    )(func)
    func = click.option(
        "--data-root",
        type=click.Path(file_okay=False),
        default=None,
        help="The product folder (default: <archive>/<product>).",
    )(func)
    func = click.option(
        "--source", default=None, help="sim|dir:PATH|arc5gl|cda; default: recorded."
    )(func)
    func = click.option("--stop", default=None, help="Stop time (default: now).")(func)
    func = click.option(
        "--start", default=None, help="Start time (default: continue from the last ingested time)."
    )(func)
    return func


@update.command("aca-l0")
@_update_options
def update_aca_l0(start, stop, source, data_root, days_at_once, wait, quiet) -> None:
    """ACA level-0 image files into <archive>/aca0."""
    from mica.archive.l0_format import L0

    _run_update(L0, source, start, stop, data_root, days_at_once, wait, quiet)


cli_obsid.register_cli(update)
update_aca_dark.register_cli(update)


@main.command()
@click.option("--repair", is_flag=True, help="Make index and files consistent.")
@click.option(
    "--verify-store",
    is_flag=True,
    help="Also decompress every columnar store chunk (reads the whole store).",
)
def check(repair: bool, verify_store: bool) -> None:
    """Check every archive: index rows against files, interrupted ingests, the store."""
    bad = False
    for product in _products().values():
        try:
            report = check_archive(product, repair=repair, verify_store=verify_store)
        except ArchiveBusy as err:
            raise click.ClickException(str(err)) from err
        click.echo(report.summary())
        if repair and report.problems:
            report = check_archive(product)
            click.echo("after repair: " + report.summary().splitlines()[0])
        bad |= not report.ok
    problems, repairs = update_aca_dark.check_dark_archive(repair=repair)
    click.echo(f"aca-dark: {len(problems)} problems")
    click.echo("  " + provenance_line(update_aca_dark.DARK, update_aca_dark.dark_cals_root()))
    for line in problems:
        click.echo(f"  problem: {line}")
    for line in repairs:
        click.echo(f"  repaired: {line}")
    bad |= bool(problems) and not repairs
    if bad:
        sys.exit(1)


@main.group()
def fetch() -> None:
    """Read data out of the archive (to the screen, CSV or a plot)."""


@fetch.command("aca-l0")
@click.option("--start", required=True)
@click.option("--stop", required=True)
@click.option("--slot", type=click.IntRange(0, 7), required=True)
@click.option("--columns", default="TIME,IMGSIZE,TEMPCCD,BGDAVG", show_default=True)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None)
def fetch_aca_l0(start, stop, slot, columns, csv_path) -> None:
    """One slot's L0 columns over a time range."""
    from astropy.table import Table

    from mica.archive import aca_l0

    cols = [c.strip().upper() for c in columns.split(",") if c.strip()]
    try:
        data = aca_l0.get_slot_data(start, stop, slot, columns=cols)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    table = Table(data)
    if csv_path:
        table.write(csv_path, format="ascii.csv", overwrite=True)
        click.echo(f"{len(table)} rows written to {csv_path}")
    else:
        table.pprint(max_lines=40, max_width=200)


@fetch.command("hdr3")
@click.argument("names", nargs=-1, required=True)
@click.option("--start", required=True)
@click.option("--stop", required=True)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a PNG plot of the items against time.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the items on their common time grid as CSV.",
)
@click.option(
    "--files",
    "from_files",
    is_flag=True,
    help="Scan the L0 FITS files instead of the columnar store (reference path).",
)
def fetch_hdr3(names, start, stop, plot_path, csv_path, from_files) -> None:
    """Header-3 pseudo-MSIDs (e.g. ccd_temp dac aca_temp) over a time range."""
    from astropy.table import Table

    from mica.archive import aca_hdr3
    from mica.time import to_date

    try:
        msids = aca_hdr3.MSIDset(list(names), start, stop, use_store=not from_files)
    except (KeyError, ValueError) as err:
        raise click.ClickException(str(err.args[0] if err.args else err)) from err
    table = Table({"time": msids.times, "date": to_date(msids.times) if len(msids.times) else []})
    for name, msid in msids.items():
        table[name] = msid.vals
        table[name].unit = msid.unit or None
        valid = msid.vals.compressed() if hasattr(msid.vals, "compressed") else msid.vals
        summary = (
            f"min {valid.min():.4g} median {np.median(valid):.4g} max {valid.max():.4g}"
            if len(valid)
            else "no valid samples"
        )
        click.echo(
            f"{name} ({msid.hdr3_msid}, {msid.unit}): {len(valid)} valid of "
            f"{len(msid.vals)}; {summary}"
        )
    if csv_path:
        table.write(csv_path, format="ascii.csv", overwrite=True)
        click.echo(f"{len(table)} rows written to {csv_path}")
    if plot_path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from mica.plot import plot_cxctime

        fig, axes = plt.subplots(
            len(msids), 1, figsize=(10, 2.5 * len(msids) + 1), sharex=True, squeeze=False
        )
        for ax, (name, msid) in zip(axes[:, 0], msids.items()):
            plot_cxctime(msid.times, msid.vals, ".", ax=ax, ms=1)
            ax.set_ylabel(f"{name} ({msid.unit})")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(plot_path, dpi=90)
        click.echo(f"plot written to {plot_path}")


@main.group()
def rebuild() -> None:
    """Rebuild derived data from the archived files."""


@rebuild.command("store")
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="The L0 product folder (default: <archive>/aca0).",
)
def rebuild_store(data_root) -> None:
    """Rebuild the L0 columnar store from the L0 files (only chunks that do not match)."""
    from mica.archive.l0_format import L0
    from mica.engine.colstore import ColumnStore
    from mica.engine.index import ArchiveIndex
    from mica.engine.lock import UpdateLock

    root = L0.root(data_root)
    try:
        with UpdateLock(root), ArchiveIndex(L0, root) as index:
            store = ColumnStore(L0, index)
            stale = store.stale_parts()
            with progress_bar("rebuild store") as bar:
                for i, part in enumerate(stale):
                    if bar:
                        bar(i, len(stale), part)
                    store.rebuild([part])
                if bar:
                    bar(len(stale), len(stale), "done")
    except ArchiveBusy as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"rebuilt {len(stale)} store chunks in {root / 'store'}")


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="mica-demo",
    show_default=True,
    help="Folder for the demo archive and plots.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out: str, quiet: bool) -> None:
    """Build a small archive from the simulated upstream and run the examples."""
    from mica.demo import run_demo

    run_demo(Path(out), progress=not quiet)


if __name__ == "__main__":
    main()
