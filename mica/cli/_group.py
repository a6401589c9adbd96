"""The top-level ``mica`` click group (the sub-modules add their commands to it)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from mica import __version__, config
from mica.errors import ConfigError, MicaError


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


def user_error(err: BaseException) -> click.ClickException:
    """One error line (exit status 1) for a user's mistake or a missing archive, whose
    message says what to do, in the command line's terms (``--archive``, not ``data_root=``)."""
    from mica.engine.index import POINT_AT_ARCHIVE

    message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    message = message.replace(POINT_AT_ARCHIVE, "point --archive or MICA_ARCHIVE at an archive")
    return click.ClickException(message)


@contextmanager
def writes_to(folder: Callable[[], Path]) -> Iterator[None]:
    """Turn a failed write (disk full, read-only, permission: `ArchiveWriteError`) into one
    message naming the archive folder (``folder()``, found only then) and exit status 1
    instead of a traceback; other errors pass."""
    from mica.errors import ArchiveWriteError

    try:
        yield
    except Exception as exc:  # a write error may come wrapped (cause, context)
        err = ArchiveWriteError.from_error(exc, folder())
        if err is None:
            raise
        raise click.ClickException(str(err)) from exc


class RegisteredProducts(click.Choice):
    """The names of the registered products with one of ``layouts``, asked of the registry
    when the command runs: a product registered after `mica.cli` is imported is offered too."""

    def __init__(self, *layouts: str) -> None:  # no fixed list: `choices` asks the registry
        self.layouts = layouts
        self.case_sensitive = True

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        from mica.engine.registry import products

        return tuple(e.name for e in products() if e.layout in self.layouts)


class _Group(click.Group):
    """The top-level group: a `MicaError` a command lets through is one error line
    (`user_error`), never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MicaError as err:
            raise user_error(err) from err


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    """mica: retrieve, archive and serve Chandra ACA telemetry and aspect products.

    An error is one line on stderr saying what to do, with exit status 1; a command-line
    mistake (an unknown option, a missing value) exits with status 2.
    """
    _logging(verbose)
    if archive:
        os.environ[config.ARCHIVE] = str(Path(archive).resolve())
    try:
        config.archive_root()  # MICA_ARCHIVE naming a file: one line here, not a traceback
    except ConfigError as err:
        raise click.ClickException(str(err)) from err
