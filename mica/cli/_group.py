"""The top-level ``mica`` click group (the sub-modules add their commands to it)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from mica import __version__, config
from mica.errors import ConfigError


def _logging(verbose: int) -> None:
    """``-v``: mica's INFO messages on stderr; ``-vv``: DEBUG (silent by default)."""
    if not verbose:
        return
    logger = logging.getLogger("mica")
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    if not any(getattr(h, "_mica_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler()  # stderr, at call time (click's test runner swaps it)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        handler._mica_cli = True  # type: ignore[attr-defined]  # one handler per process
        logger.addHandler(handler)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mica", message="%(prog)s %(version)s")
@click.option(
    "--archive",
    type=click.Path(file_okay=False),
    default=None,
    help="Archive root (default: $MICA_ARCHIVE or a per-user data folder).",
)
@click.option(
    "-v", "--verbose", count=True, help="Log diagnostics to stderr (-v: info, -vv: debug)."
)
def main(archive: str | None, verbose: int) -> None:
    """mica: retrieve, archive and serve Chandra ACA telemetry and aspect products."""
    _logging(verbose)
    if archive:
        os.environ[config.ARCHIVE] = str(Path(archive).resolve())
    try:
        config.archive_root()  # MICA_ARCHIVE naming a file: one line here, not a traceback
    except ConfigError as err:
        raise click.ClickException(str(err)) from err
