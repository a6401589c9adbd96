"""``mica check``: every registered product's archive, optionally repaired."""

from __future__ import annotations

import sys

import click

from mica.cli._group import main
from mica.engine.registry import products


@main.command()
@click.option("--repair", is_flag=True, help="Make index and files consistent.")
@click.option(
    "--verify-store",
    is_flag=True,
    help="Also check every columnar store chunk against its recorded identity and digests "
    "and decompress it (reads the whole store).",
)
def check(repair: bool, verify_store: bool) -> None:
    """Check every archive: index rows against files, interrupted ingests, the store."""
    from mica.cli.update import archive_writes
    from mica.engine.lock import ArchiveBusy

    bad = False
    try:
        for entry in products():
            with archive_writes(entry, None):
                report = entry.check(repair=repair, verify_store=verify_store)
                click.echo(report.summary())
                if repair and report.problems:
                    report = entry.check()
                    click.echo("after repair: " + report.summary().splitlines()[0])
                bad |= not report.ok
    except ArchiveBusy as err:
        raise click.ClickException(str(err)) from err
    if bad:
        sys.exit(1)
