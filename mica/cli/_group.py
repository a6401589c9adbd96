"""The top-level ``mica`` click group (the sub-modules add their commands to it)."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--archive",
    type=click.Path(file_okay=False),
    default=None,
    help="Archive root (default: $MICA_ARCHIVE or a per-user data folder).",
)
def main(archive: str | None) -> None:
    """mica: retrieve, archive and serve Chandra ACA telemetry and aspect products."""
    if archive:
        os.environ["MICA_ARCHIVE"] = str(Path(archive).resolve())
