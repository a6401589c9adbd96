"""``mica check``: every registered product's archive, optionally repaired."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from mica._lazy import import_target
from mica.cli._group import main, user_error
from mica.engine.registry import ProductEntry, products


def repair_command(verify_store: bool) -> str:
    """The ``mica check --repair`` that mends what this check found (same archive, and
    ``--verify-store`` when the check decompressed the store: only then are unreadable chunks
    found and rebuilt)."""
    archive = click.get_current_context().find_root().params.get("archive")
    words = ["mica", *(["--archive", archive] if archive else []), "check", "--repair"]
    return shlex.join(words + (["--verify-store"] if verify_store else []))


@main.command()
@click.option("--repair", is_flag=True, help="Make index and files consistent.")
@click.option(
    "--verify-store",
    is_flag=True,
    help="Also check every columnar store chunk against its recorded identity and digests "
    "and decompress it, and every V&V folder's files against their digests (reads the "
    "whole store and every V&V file).",
)
def check(repair: bool, verify_store: bool) -> None:
    """Check every archive: index rows against files, interrupted ingests, the store.

    Each problem found comes with what mends it. --repair also fetches again, from the
    server its sync record names, a store chunk a sync installed that it removed damaged.
    Exit status 0 when there is none (after --repair: none left), 1 otherwise.
    """
    from mica.cli.update import archive_writes
    from mica.engine.lock import ArchiveBusy
    from mica.sync.run import fetch_removed_chunks

    _require_some_archive()
    mend = repair_command(verify_store)
    bad = False
    try:
        for entry in products():
            with archive_writes(entry, None):
                report = entry.check(repair=repair, verify_store=verify_store)
                click.echo(report.summary(None if repair else mend))
                if repair and report.problems:
                    # a sync's chunks the repair removed: fetched again from its server
                    for line in fetch_removed_chunks(None, entry.name):
                        click.echo(line)
                    report = entry.check()
                    lines = report.summary(None).splitlines()
                    click.echo("\n".join(["after repair: " + lines[0], *lines[1:]]))
                bad |= not report.ok
    except ArchiveBusy as err:
        raise user_error(err) from err
    if bad:
        sys.exit(1)


def _product_folder(entry: ProductEntry) -> Path:
    """The folder ``entry``'s archive lives in (a calibration product: its file product's)."""
    from mica.cli.update import archive_folder

    if entry.product:
        return import_target(entry.product).root(None)
    return archive_folder(entry, None)


def _require_some_archive() -> None:
    """Refuse to check a root holding no product's folder (mistyped ``--archive``, unset
    ``MICA_ARCHIVE``): "0 problems" there would say a missing archive is healthy."""
    from mica.config import archive_root

    root = archive_root()
    folders = {_product_folder(entry) for entry in products()} - {root}
    if not any(folder.is_dir() for folder in folders):
        raise click.ClickException(
            f"no archive in {root} (no product folder there): fill it with "
            f"'mica --archive {root} update aca-l0 --start ... --stop ... --source ...' "
            "(and the other products), or point --archive / MICA_ARCHIVE at an archive"
        )
