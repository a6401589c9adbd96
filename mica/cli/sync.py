"""``mica publish`` and ``mica sync``: any part of an archive elsewhere, over plain HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mica.cli._group import main, user_error, writes_to
from mica.errors import MicaError

#: Exit status of an interrupted sync (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def _numbers(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of {what}") from None


def republish(product: str, data_root: str | None, archive: Path | None = None) -> None:
    """After an update of ``product`` in an archive that is published (``publish/head.json``
    exists at its root), publish that product again (and its store-view products), so a
    server's manifests follow its updates without a cron line of their own. ``archive``:
    the archive root (default: `mica.config.archive_root`)."""
    from mica.config import archive_root
    from mica.sync.manifest import HEAD_NAME, PUBLISH_DIR, VIEW_PRODUCTS
    from mica.sync.publish import publish as run

    root = archive_root(archive)
    if data_root is not None or not (root / PUBLISH_DIR / HEAD_NAME).exists():
        return  # a product folder named apart, or an archive never published
    names = [product, *(name for name, (of, _) in VIEW_PRODUCTS.items() if of == product)]
    try:
        with writes_to(lambda: root):
            click.echo(run(root, names).summary().splitlines()[0])
    except MicaError as err:
        raise user_error(err) from err


@main.command()
@click.option(
    "--products", default=None, help="Comma-separated products (default: all the archive holds)."
)
def publish(products) -> None:
    """Write the manifests that let mica sync copy this archive from a web server.

    Serve the archive folder as it lies with any static web server (nginx, Apache,
    python -m http.server); run this after each update. Publishing is atomic (the head is
    replaced last) and writes nothing when nothing changed.
    """
    from mica.config import archive_root
    from mica.sync.publish import publish as run

    root = archive_root()
    try:
        with writes_to(lambda: root):
            report = run(root, _names(products))
    except MicaError as err:
        raise user_error(err) from err
    click.echo(report.summary())


@main.command()
@click.argument("url")
@click.option(
    "--products",
    required=True,
    help="Comma-separated products, e.g. aca-hdr3,acq-stats,vv,obspar or aca-l0.",
)
@click.option("--start", default=None, help="Start time (e.g. 2012:125; UTC).")
@click.option("--stop", default=None, help="Stop time (same forms as --start).")
@click.option("--slots", default=None, help="Comma-separated ACA slots (aca-l0, aca-hdr3).")
@click.option("--obsid", "obsids", default=None, help="Comma-separated obsids.")
@click.option("--dry-run", is_flag=True, help="Say what would move and how big; change nothing.")
@click.option(
    "--transfers",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Files downloaded at a time.",
)
@click.option(
    "--archive",
    "archive",
    type=click.Path(file_okay=False),
    default=None,
    help="The archive to sync into (default: mica --archive, $MICA_ARCHIVE, ...).",
)
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def sync(url, products, start, stop, slots, obsids, dry_run, transfers, archive, quiet) -> None:
    """Bring products of the archive published at URL into this archive.

    Only what is missing or changed moves; every file is verified against the manifest,
    raw products are validated as any update validates them, and the archive changes at
    once (a reader sees it before or after). Run it again to bring the archive up to date,
    or after an interruption (partial files are resumed). Exit status 0 on success, 1 on
    an error or refused file, 130 when interrupted.
    """
    from mica.sync.manifest import Selection
    from mica.sync.run import sync as run
    from mica.time import time_range, to_secs

    try:
        if start is not None and stop is not None:
            t0, t1 = time_range(start, stop)
        else:
            t0, t1 = (None if t is None else to_secs(t) for t in (start, stop))
        selection = Selection(t0, t1, _numbers(slots, "slots"), _numbers(obsids, "obsids"))
        report = run(
            url, _names(products) or [], selection, archive=archive, transfers=transfers,
            dry_run=dry_run, progress=not quiet and not dry_run,
        )  # fmt: skip
    except MicaError as err:
        raise user_error(err) from err
    except KeyboardInterrupt:
        click.echo(
            "sync interrupted: the archive holds what it held, or each product whole as "
            "installed; run the same command again to resume the transfers",
            err=True,
        )
        sys.exit(INTERRUPTED)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)
