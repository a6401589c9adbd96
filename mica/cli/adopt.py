"""``mica adopt``: an archive of the original mica made this package's, in place."""

from __future__ import annotations

import sys

import click

from mica.cli._group import RegisteredProducts, main

#: the products whose folders the original mica kept (an index of files; `mica.engine.adopt`)
ADOPTABLE = RegisteredProducts("time", "obsid")


@main.command()
@click.argument("names", nargs=-1, type=ADOPTABLE)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="The product folder (one product only; default: <archive>/<product>).",
)
@click.option(
    "--wait",
    type=float,
    default=0.0,
    help="Seconds to wait for a running update (default: exit).",
)
@click.option(
    "--scheduler", default=None, help="Read the files and build the store on this dask scheduler."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Read the files and build the store on a local dask cluster of this many workers.",
)
def adopt(names, data_root, wait, scheduler, workers) -> None:
    """Adopt the original mica's archive (aca-l0, asp-l1, obspar; default: all) in place.

    Its readers work on it as it is; adopting adds this package's index tables and columns,
    records its provenance (real, source arc5gl) in archive.json and builds the columnar
    store, so that updates continue it. Its files stay where they are. Running it again
    finishes an interrupted adoption.
    """
    from mica.cli.update import archive_writes, cluster
    from mica.engine.adopt import adopt_archive
    from mica.engine.lock import ArchiveBusy
    from mica.engine.registry import get
    from mica.engine.store_rebuild import rebuild_store
    from mica.errors import ProvenanceError

    names = list(names) or list(ADOPTABLE.choices)
    if data_root is not None and len(names) != 1:
        raise click.UsageError("--data-root names one product folder: name one product")
    bad = False
    try:
        with cluster(scheduler, workers) as executor:
            for name in names:
                entry = get(name)
                product = entry.load()
                with archive_writes(entry, data_root):
                    # on a cluster the store is built there, by the store rebuild's units
                    report = adopt_archive(
                        product, data_root, executor is None, executor=executor, wait=wait
                    )
                    if executor is not None and product.has_store and report.files:
                        built = rebuild_store(product, data_root, executor=executor, wait=wait)
                        report.done.append(f"columnar store: {len(built.done)} chunks built")
                        failed = built.failed.items()
                        report.problems += [f"store chunk {k}: {v}" for k, v in failed]
                click.echo(report.summary())
                bad |= not report.ok
    except (ArchiveBusy, ProvenanceError) as err:
        raise click.ClickException(str(err)) from err
    if bad:
        sys.exit(1)
