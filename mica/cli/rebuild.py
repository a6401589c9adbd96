"""``mica rebuild store``: the L0 columnar store rebuilt from the archived L0 files;
``mica rebuild index``: a product's index rebuilt from its archived files."""

from __future__ import annotations

import sys

import click

from mica.cli._group import RegisteredProducts, main, user_error
from mica.engine.lock import ArchiveBusy
from mica.errors import ProvenanceError


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
@click.option(
    "--scheduler", default=None, help="Build the chunks on this dask.distributed scheduler."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Build the chunks on a local dask cluster of this many worker processes.",
)
def rebuild_store(data_root, scheduler, workers) -> None:
    """Rebuild the L0 columnar store from the L0 files (only chunks that do not match)."""
    from mica.cli.update import archive_writes, cluster
    from mica.engine.index import require_archive
    from mica.engine.registry import get
    from mica.engine.store_rebuild import rebuild_store as rebuild
    from mica.products.aca_l0 import L0
    from mica.progress import progress_bar

    require_archive(L0.name, L0.root(data_root))  # nothing to rebuild: say so, create nothing
    try:
        with cluster(scheduler, workers) as executor, archive_writes(get("aca-l0"), data_root):
            with progress_bar("rebuild store") as bar:
                report = rebuild(L0, data_root, executor=executor, progress=bar)
    except (ArchiveBusy, ProvenanceError) as err:  # busy, or the original's (not adopted)
        raise user_error(err) from err
    click.echo(f"rebuilt {len(report.done)} store chunks in {L0.root(data_root) / 'store'}")
    if report.failed:
        for part, why in report.failed.items():
            click.echo(f"  not rebuilt: {part}: {why}")
        sys.exit(1)


@rebuild.command("index")
@click.argument(
    "product",
    type=RegisteredProducts("time", "obsid"),  # the products kept with an index
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="The product folder (default: <archive>/<product folder>).",
)
@click.option(
    "--wait",
    type=float,
    default=0.0,
    help="Seconds to wait for another running update (default: exit).",
)
def rebuild_index(product: str, data_root: str | None, wait: float) -> None:
    """Rebuild PRODUCT's index (archfiles.db3) from its archived files.

    Every file is validated again and indexed from its own headers and checksum; no row of
    the old index is trusted. The old index is kept beside it with a timestamp suffix.
    """
    from mica.cli.update import archive_writes
    from mica.engine.index_rebuild import rebuild_index as rebuild
    from mica.engine.registry import get
    from mica.errors import MicaError

    entry = get(product)
    try:
        with archive_writes(entry, data_root):
            done = rebuild(entry.load(), data_root, wait=wait)
    except (ArchiveBusy, MicaError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{product}: {done[0]}")
    for line in done[1:]:
        click.echo(f"  {line}")
