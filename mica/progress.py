"""A rich progress bar usable as the engine's ``progress(done, total, label)`` callback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mica.engine.update import Progress as ProgressCallback


@contextmanager
def progress_bar(title: str, enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """Yield a callback that drives one bar (or None when disabled)."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[label]}"),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(title, total=None, label="")

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, label=label)

        yield update


def run_update_command(
    title: str,
    quiet: bool,
    update: Callable[[ProgressCallback | None], Any],
    failed: Callable[[Any], bool],
    errors: tuple[type[Exception], ...] = (),
) -> None:
    """Shared body of the ``mica update ...`` commands: run ``update(progress)`` under a bar,
    turn expected errors into a clean CLI message, print the report's summary, and exit 1
    when ``failed(report)``."""
    from mica.engine.lock import ArchiveBusy
    from mica.sources import SourceError

    try:
        with progress_bar(title, enabled=not quiet) as bar:
            report = update(bar)
    except (ArchiveBusy, SourceError, ValueError, *errors) as err:
        raise click.ClickException(str(err)) from err
    click.echo(report.summary())
    if failed(report):
        sys.exit(1)
