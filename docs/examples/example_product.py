"""A file product (``example-table``): hourly FITS tables of one value over time.

Each file ``exmpl<TSTART>.fits.gz`` (TSTART in whole CXC seconds) holds a binary table
``EXAMPLE`` with columns TIME (CXC seconds, increasing) and VALUE, and TSTART, TSTOP and
REVISION in its primary header. The archive keeps the files in
``<archive>/example/<year>/<doy>/``, indexed by time; a file of a higher revision replaces
the one it overlaps. `EXAMPLE_TABLE` is all the engine needs to fetch, check, place, index and
check again such files; `ENTRY` is its line of the registry.
"""

from __future__ import annotations

import re
from typing import Any

from astropy.io import fits

from mica.engine.product import TIME_INDEX_COLUMNS, FileProduct, IndexColumn, RejectedFile
from mica.engine.provenance import SIM_KEYWORD
from mica.engine.registry import ProductEntry, register_product
from mica.engine.validate import ColumnFormat, check_columns, check_int, check_span, check_times
from mica.time import year_doy

#: the table's columns as the files write them (anything else is refused)
COLUMNS = {"TIME": ColumnFormat("1D"), "VALUE": ColumnFormat("1E")}


class ExampleTable(FileProduct):
    """Hourly tables of TIME and VALUE (see the module docstring)."""

    name = "example-table"
    subdir = "example"
    filename_re = re.compile(r"exmpl(\d{9,10})\.fits\.gz")
    # filename, filetime, year, doy, tstart, tstop; then what ingest's revision rules compare
    index_columns = [
        *TIME_INDEX_COLUMNS,
        IndexColumn("revision", "int not null"),
        IndexColumn("checksum", "text"),
    ]
    max_file_span = 3600.0  # a file covers at most an hour...
    source_lookback = 3600.0  # ...so one that began an hour before a range may reach into it
    extname = "EXAMPLE"

    def name_time(self, name: str) -> float:
        match = self.filename_re.fullmatch(self.archive_name(name))
        if match is None:
            raise ValueError(f"{name} is not an {self.name} file name")
        return float(match.group(1))

    def describe(self, name: str, hdus: fits.HDUList) -> dict[str, Any]:
        header, table = hdus[0].header, hdus[self.extname]
        tstart, tstop = check_span(
            name, header.get("TSTART"), header.get("TSTOP"), self.max_file_span,
            simulated=header.get(SIM_KEYWORD) is True,
        )  # fmt: skip
        if int(tstart) != self.name_time(name):
            raise RejectedFile(name, f"TSTART {tstart} is not the time in the file name")
        revision = check_int(name, "REVISION", header.get("REVISION"), 1, 999)
        check_columns(name, table, COLUMNS)
        check_times(name, table.data["TIME"], tstart, tstop, before=0.0, after=0.0)
        year, doy = year_doy(tstart)
        return {"filename": name, "filetime": int(tstart), "year": year, "doy": doy,
                "tstart": tstart, "tstop": tstop, "revision": revision}  # fmt: skip

    def folder(self, row: dict[str, Any]) -> str:
        return f"{row['year']}/{row['doy']:03d}"


EXAMPLE_TABLE = ExampleTable()

#: The registry line. Inside the package it is an entry of the table in
#: `mica.engine.registry`; from outside, `register` adds it.
ENTRY = ProductEntry(
    "example-table", "time", "example_product:EXAMPLE_TABLE",
    "Example tables of one value over time into <archive>/example.",
)  # fmt: skip


def register() -> None:
    """Make ``mica update example-table`` and ``mica check`` know the product."""
    register_product(ENTRY)
