"""``mica update <product>``: one command per registered product, one set of options."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from mica.cli._group import main, user_error, writes_to
from mica.cli.sync import republish
from mica.engine.registry import ProductEntry, products


class _ProductCommands(click.Group):
    """One command per registered product, built when asked: a product registered after
    `mica.cli` is imported (a plugin) has its ``mica update`` command too."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [entry.name for entry in products()]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = next((e for e in products() if e.name == cmd_name), None)
        return None if entry is None else _command(entry)


@main.group(cls=_ProductCommands)
def update() -> None:
    """Fill an archive from an upstream source, incrementally and safely.

    Each command prints a summary: the units done, already archived, failed and skipped,
    then a line for each. Exit status 0 when nothing failed, 1 when a unit failed or a file
    was refused (or on an error), 130 when interrupted (Ctrl-C): the summary then says what
    it finished and what it left, and the same command run again completes it.
    """


def _parse_obsids(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    """``--obsid 6000 --obsid 2121,7000`` -> [6000, 2121, 7000] (None when not given)."""
    out = []
    for value in values:
        for part in str(value).split(","):
            if part.strip():
                try:
                    out.append(int(part))
                except ValueError:
                    raise click.BadParameter(f"{part!r} is not an obsid") from None
    return out or None


def _option(name: str, entry: ProductEntry) -> click.Option:
    """The one definition of each update option (help adapted to the product)."""
    options = {
        "start": lambda: click.Option(
            ["--start"], default=None, help=f"Start time (default: {entry.start_help})."
        ),
        "stop": lambda: click.Option(["--stop"], default=None, help="Stop time (default: now)."),
        "source": lambda: click.Option(
            ["--source"],
            default=None,
            help="sim, dir:PATH, arc5gl, cda[:URL] (where the product is served); default: the "
            "source recorded in the archive (archive.json).",
        ),
        "obsids": lambda: click.Option(
            ["--obsid", "obsids"],
            multiple=True,
            callback=_parse_obsids,
            help="Obsid(s) to update (repeat or comma-separate); default: by time.",
        ),
        "data_root": lambda: click.Option(
            ["--data-root"],
            type=click.Path(file_okay=False),
            default=None,
            help=f"{entry.data_root_help.capitalize()} (default: <archive>/<product>).",
        ),
        "wait": lambda: click.Option(
            ["--wait"],
            type=float,
            default=0.0,
            help="Seconds to wait for another running update (default: exit).",
        ),
        "quiet": lambda: click.Option(["--quiet"], is_flag=True, help="No progress bar."),
        "refresh": lambda: click.Option(
            ["--refresh"],
            is_flag=True,
            help="Fetch revisions again even when complete (verifies them).",
        ),
        "with_inputs": lambda: click.Option(
            ["--with-inputs"],
            is_flag=True,
            help="First archive the inputs it needs (L0 around each calibration), same source.",
        ),
        "check_missing": lambda: click.Option(
            ["--check-missing"],
            is_flag=True,
            help="Also retry the observations recorded as failed or missing from the table.",
        ),
        "days_at_once": lambda: click.Option(
            ["--days-at-once"],
            type=float,
            default=None,
            help="Chunk length in days (default: 30, or 1 on a cluster).",
        ),
        "scheduler": lambda: click.Option(
            ["--scheduler"],
            default=None,
            help="Run the work on this dask.distributed scheduler (tcp://host:8786).",
        ),
        "workers": lambda: click.Option(
            ["--workers"],
            type=click.IntRange(min=1),
            default=None,
            help="Run the work on a local dask cluster of this many worker processes.",
        ),
        "l0_root": lambda: click.Option(
            ["--l0-root"],
            type=click.Path(file_okay=False),
            default=None,
            help="L0 archive for CCD temperatures (default: aca0 beside the aca_dark folder).",
        ),
    }
    return options[name]()


def archive_folder(entry: ProductEntry, data_root: str | None) -> Path:
    """The folder an update or check of ``entry`` writes (named in write errors)."""
    if data_root is not None:
        return Path(data_root)
    target = entry.load()
    if hasattr(target, "root"):
        return target.root(None)
    from mica.config import archive_root

    return archive_root()


@contextmanager
def archive_writes(entry: ProductEntry, data_root: str | None) -> Iterator[None]:
    """`writes_to` the product's archive folder."""
    with writes_to(lambda: archive_folder(entry, data_root)):
        yield


@contextmanager
def cluster(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """The dask executor ``--scheduler`` / ``--workers`` ask for (None without them), its
    dashboard named; closed at the end."""
    if scheduler is None and workers is None:
        yield None
        return
    from mica.engine.executors.dask import DaskExecutor

    try:
        executor = DaskExecutor(scheduler=scheduler, workers=workers)
    except ImportError as err:
        raise user_error(err) from err
    except OSError as err:  # no scheduler at that address
        raise click.ClickException(f"cannot reach the dask scheduler {scheduler}: {err}") from err
    with executor:
        where = scheduler or f"a local cluster of {workers} worker processes"
        click.echo(f"running on {where}; dashboard: {executor.dashboard or 'none'}", err=True)
        yield executor


#: Exit status of an interrupted update (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130

#: Archive bytes per day of data, for the size estimate before a long build (measured: the
#: simulated mission's L0 with its columnar store, about 675 MB per 10 days).
BYTES_PER_DAY = {"aca-l0": 67.5e6}
#: Builds estimated larger than this ask for --yes (or a confirmation on a terminal).
CONFIRM_BYTES = 3e9


def estimated_bytes(entry: ProductEntry, options: dict[str, Any]) -> tuple[float, str] | None:
    """(bytes, what) an update of ``entry`` would add, when it can be told in advance."""
    from mica.time import time_range, to_date

    rate = BYTES_PER_DAY.get(entry.name)
    if rate is None:
        return None
    start = options.get("start")
    if start is None:  # continues where the archive left off (nothing to estimate if empty)
        from mica.engine.index import ArchiveIndex
        from mica.errors import MicaError

        root = archive_folder(entry, options.get("data_root"))
        try:
            with ArchiveIndex.open_for_reading(entry.load(), root) as index:
                start = index.resume_time()
        except (MicaError, OSError):
            return None
        if start is None:
            return None
    tstart, tstop = time_range(start, options.get("stop"))
    days = (tstop - tstart) / 86400.0
    what = f"{days:.0f} days of {entry.name}, {to_date(tstart)[:8]} to {to_date(tstop)[:8]}"
    return days * rate, what


def _confirm_size(entry: ProductEntry, options: dict[str, Any], yes: bool) -> None:
    """Say the size of a large build first; go on with --yes or a terminal's confirmation."""
    estimate = estimated_bytes(entry, options)
    if estimate is None or estimate[0] <= CONFIRM_BYTES:
        return
    size, what = estimate
    click.echo(f"This update would add about {size / 1e9:.1f} GB to the archive ({what}).")
    if yes:
        return
    if sys.stdin.isatty():
        click.confirm("Go ahead?", abort=True)
        return
    raise click.ClickException(
        "not started: give --yes to build it, or a later --start for a smaller update"
    )


def _run(entry: ProductEntry, options: dict[str, Any]) -> None:
    from mica.engine.lock import ArchiveBusy
    from mica.engine.obsid_layout import ObsidError
    from mica.progress import progress_bar
    from mica.sources import SourceError
    from mica.time import time_range

    if options.get("obsids") and (options.get("start") or options.get("stop")):
        raise click.UsageError("give either --obsid or --start/--stop, not both")
    yes = options.pop("yes", False)
    try:
        if options.get("start") and options.get("stop"):  # a stop before start, said first
            time_range(options["start"], options["stop"])
        _confirm_size(entry, options, yes)
    except ValueError as err:  # a time not understood, stop before start
        raise user_error(err) from err
    try:
        with cluster(options.pop("scheduler", None), options.pop("workers", None)) as executor:
            with archive_writes(entry, options.get("data_root")):
                with progress_bar(f"update {entry.name}", enabled=not options["quiet"]) as bar:
                    report = entry.update(progress=bar, executor=executor, **options)
    except (ArchiveBusy, SourceError, ObsidError, ValueError) as err:
        raise user_error(err) from err
    except KeyboardInterrupt as interrupt:  # the runner's message: done, left, how to go on
        click.echo(interrupt.args[0] if interrupt.args else f"update {entry.name} interrupted")
        sys.exit(INTERRUPTED)
    click.echo(report.summary())
    republish(entry.name, options.get("data_root"))
    if not report.ok:
        sys.exit(1)


def _command(entry: ProductEntry) -> click.Command:
    params = [_option(name, entry) for name in entry.options]
    if entry.name in BYTES_PER_DAY:
        params.append(
            click.Option(
                ["--yes", "-y"],
                is_flag=True,
                help=f"Build even when larger than {CONFIRM_BYTES / 1e9:.0f} GB (the size is "
                "said first; on a terminal it asks).",
            )
        )
    return click.Command(
        entry.name,
        callback=lambda **options: _run(entry, options),
        params=params,
        help=entry.help,
    )
