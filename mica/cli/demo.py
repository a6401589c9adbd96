"""``mica demo``: a small archive from the simulated upstream, the examples and plots."""

from __future__ import annotations

from pathlib import Path

import click

from mica.cli._group import main


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
