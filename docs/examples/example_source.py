"""A source (``example``): writes the ``example-table`` files it is asked for.

A real source downloads or copies the files a product's update asks for; this one makes
them, so it runs anywhere: one file an hour, named by its start, with a TIME row a minute
and VALUE a sine of a day's period. Its files carry the simulation marker (`SIM_KEYWORD`),
as its `provenance` says, so an archive of them is never mistaken for flight data.
"""

from __future__ import annotations

import gzip
import io
import math
from pathlib import Path

import numpy as np
from astropy.io import fits

from mica.engine.product import FileProduct
from mica.engine.provenance import SIM_KEYWORD
from mica.engine.source import Source, register_source

HOUR = 3600.0


class ExampleSource(Source):
    """Generates hourly ``example-table`` files (see the module docstring)."""

    scheme = "example"
    spec = "example"
    provenance = "simulated"
    products = frozenset({"example-table"})

    def fetch(
        self,
        product: FileProduct,
        start: float,
        stop: float,
        dest: Path,
        lookback: float | None = None,
    ) -> list[Path]:
        self.require(product)
        lookback = product.source_lookback if lookback is None else lookback
        first, last = math.ceil((start - lookback) / HOUR), math.floor(stop / HOUR)
        return [write_file(hour * HOUR, Path(dest)) for hour in range(first, last + 1)]


def write_file(tstart: float, dest: Path) -> Path:
    """Write the hour starting at ``tstart`` (CXC seconds) into ``dest``; its path."""
    times = tstart + np.arange(30.0, HOUR, 60.0)
    values = np.sin(2 * np.pi * times / 86400.0).astype(np.float32)
    primary = fits.PrimaryHDU()
    primary.header.update(
        {"TSTART": tstart, "TSTOP": tstart + HOUR, "REVISION": 1, SIM_KEYWORD: True}
    )
    table = fits.BinTableHDU.from_columns(
        [fits.Column("TIME", "1D", array=times), fits.Column("VALUE", "1E", array=values)],
        name="EXAMPLE",
    )
    hdus = fits.HDUList([primary, table])
    for hdu in hdus:  # a fixed comment, not the time: the same hour gives the same bytes
        hdu.add_checksum(when="example source")
    raw = io.BytesIO()
    hdus.writeto(raw)
    path = dest / f"exmpl{int(tstart)}.fits.gz"
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return path


def register() -> None:
    """The registry line: ``--source example``. Inside the package it is a line of
    `mica.engine.source.BUILTIN_SOURCES` (``"example": "mica.sources.example:ExampleSource"``)."""
    register_source("example", ExampleSource.from_arg)
