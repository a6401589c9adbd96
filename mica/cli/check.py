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
    help="Also decompress every columnar store chunk (reads the whole store).",
)
def check(repair: bool, verify_store: bool) -> None:
    """Check every archive: index rows against files, interrupted ingests, the store."""
    from mica.cli.update import archive_writes
    from mica.engine.lock import ArchiveBusy

    bad = False
    try:
        for entry in products():
            with archive_writes(entry, None):
                if entry.kind == "calib":
                    bad |= _check_calib(entry, repair)
                    continue
                if entry.kind == "derived":
                    bad |= _check_derived(entry, repair)
                    continue
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


def _check_calib(entry, repair: bool) -> bool:  # noqa: ANN001  (a registry entry)
    from mica.engine.provenance import provenance_line

    problems, repairs = entry.check(repair=repair)
    module = entry.load()
    click.echo(f"{entry.name}: {len(problems)} problems")
    click.echo("  " + provenance_line(module.DARK, module.dark_cals_root()))
    return _problem_lines(problems, repairs)


def _check_derived(entry, repair: bool) -> bool:  # noqa: ANN001  (a registry entry)
    from mica.engine.provenance import archive_kind

    product = entry.load()
    if not product.table(None).exists():
        click.echo(f"{entry.name}: no table at {product.table(None).path}")
        return False
    problems, repairs = entry.check(repair=repair)
    kind = archive_kind(product.root(None)) or "unknown"
    click.echo(f"{entry.name}: {len(problems)} problems ({kind} data)")
    for line in product.remarks(None) if not problems else []:
        click.echo(f"  note: {line}")
    return _problem_lines(problems, repairs)


def _problem_lines(problems: list[str], repairs: list[str]) -> bool:
    for line in problems:
        click.echo(f"  problem: {line}")
    for line in repairs:
        click.echo(f"  repaired: {line}")
    return bool(problems) and not repairs
