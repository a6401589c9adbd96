"""What ``mica fetch`` writes: CSV files whose numbers read as stored, checked output paths."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # numpy and astropy are imported by the commands that write (not --help)
    import numpy as np
    from astropy.table import Table


def output_file(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """The callback of ``--csv``: a file whose folder exists, checked before anything is
    read (one error line, exit status 1)."""
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        raise click.ClickException(f"cannot write {value}: it is a folder")
    if not path.parent.is_dir():
        raise click.ClickException(f"cannot write {value}: there is no folder {path.parent}")
    return path


def plot_file(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """The callback of ``--plot``: as `output_file`, in a format matplotlib writes."""
    path = output_file(ctx, param, value)
    if path is None:
        return None
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lstrip(".").lower() not in formats:
        raise click.ClickException(
            f"cannot write a plot to {value}: name it .png (or {', '.join(sorted(formats))})"
        )
    return path


def _formatter(dtype: np.dtype) -> Callable[[Any], str]:
    """How one value of ``dtype`` is written: floats as the shortest text that reads back as
    the same value of their own dtype (a float32 ``1.696``, not its float64
    ``1.6959999799728394``), bytes decoded."""
    if dtype.kind == "f" and dtype.itemsize < 8:
        scalar = dtype.type
        return lambda v: str(scalar(v))  # numpy's shortest text at that precision
    if dtype.kind == "f":
        return lambda v: repr(float(v))
    if dtype.kind == "S":
        return lambda v: v.decode("ascii", "replace")
    if dtype.kind in "iu":
        return lambda v: str(int(v))
    return str


def csv_rows(table: Table) -> Iterator[list[str]]:
    """The header, then one row of text per table row (a masked value is an empty field)."""
    import numpy as np

    yield list(table.colnames)
    columns = []
    for name in table.colnames:
        col = table[name]
        values = np.asarray(col)
        mask = np.ma.getmaskarray(col) if hasattr(col, "mask") else np.zeros(len(col), bool)
        columns.append((values, mask, _formatter(values.dtype)))
    for i in range(len(table)):
        yield ["" if mask[i] else fmt(values[i]) for values, mask, fmt in columns]


def write_csv(table: Table, path: Path) -> None:
    """Write ``table`` as CSV in its column order (`csv_rows`); a failed write is one error
    line (`click.ClickException`)."""
    for name in table.colnames:
        if table[name].ndim > 1:
            size = math.prod(table[name].shape[1:])
            raise click.ClickException(
                f"cannot write {path}: {name} holds {size} values per row, which a CSV column "
                "cannot; leave it out of --columns (Python reads it: "
                "mica.archive.aca_l0.get_slot_data)"
            )
    try:
        with open(path, "w", newline="") as out:
            csv.writer(out).writerows(csv_rows(table))
    except OSError as err:
        raise click.ClickException(f"cannot write {path}: {err.strerror or err}") from err
    click.echo(f"{len(table)} rows written to {path}")


def say_no_data(what: str, start: str, stop: str) -> None:
    """Say on stderr, in one line, that the range holds none of ``what``: an empty answer,
    not an error (the exit status stays 0; a CSV gets its header only)."""
    from mica.time import to_date

    click.echo(
        f"no data: the archive holds no {what} between {to_date(start)} and {to_date(stop)}",
        err=True,
    )
