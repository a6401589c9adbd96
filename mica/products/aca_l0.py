"""The ACA level-0 product (``aca0``): the image-file format and its archive description.

The format tables (columns per image size, TFORMs, the reader's dtype, the store's dtypes and
partitions, the header-3 view) are shared by the product (`L0`, a time-indexed
`mica.engine.product.FileProduct` with a column store) and the readers `mica.archive.aca_l0`
and `mica.archive.aca_hdr3`, which import them from here. The header-3 bytes' items are
`mica.products.hdr3_items`, the sample tables the store derives from them
`mica.products.hdr3_samples`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

from mica._lazy import fits
from mica.engine.product import TIME_INDEX_COLUMNS, FileProduct, IndexColumn, RejectedFile
from mica.engine.provenance import SIM_KEYWORD
from mica.engine.store_layout import StoreDescription, StoreView
from mica.engine.validate import (
    ColumnFormat,
    check_columns,
    check_int,
    check_span,
    check_times,
    rows_text,
)
from mica.products.hdr3_items import HD3_COLUMNS
from mica.products.hdr3_mission import DAILY_TABLE
from mica.products.hdr3_samples import SAMPLES_LAYOUT, SAMPLES_REACH, SAMPLES_VIEW
from mica.products.hdr3_stats import hdr3_tables
from mica.time import year_doy

_BASE = [
    "TIME",
    "QUALITY",
    "MJF",
    "MNF",
    "END_INTEG_TIME",
    "INTEG",
    "GLBSTAT",
    "COMMCNT",
    "COMMPROG",
    "IMGFID1",
    "IMGNUM1",
    "IMGFUNC1",
    "IMGSTAT",
    "IMGROW0",
    "IMGCOL0",
    "IMGSCALE",
    "BGDAVG",
]
_HDR2 = [
    "IMGFID2",
    "IMGNUM2",
    "IMGFUNC2",
    "BGDRMS",
    "TEMPCCD",
    "TEMPHOUS",
    "TEMPPRIM",
    "TEMPSEC",
    "BGDSTAT",
]
_HDR34 = ["IMGFID3", "IMGNUM3", "IMGFUNC3", "IMGFID4", "IMGNUM4", "IMGFUNC4"]

#: FITS table columns by image size, in file order (real 2003/2007/2019 layouts).
FILE_COLUMNS: dict[int, list[str]] = {
    4: _BASE + ["IMGRAW"],
    6: _BASE + _HDR2 + ["IMGRAW"],
    8: _BASE + _HDR2 + _HDR34 + ["IMGRAW"] + HD3_COLUMNS,
}
#: Optional string columns of post-2023 processing, with the value used when absent.
OPTIONAL_DEFAULTS = {"PIXTLM": "ORIG", "BGDTYP": "FLAT"}
#: 16-bit columns stored with TZERO 32768 and TSCAL 1 (unsigned on read)
UNSIGNED_COLUMNS = ("IMGSCALE", "BGDAVG", "BGDRMS")
#: TFORM of every file column as the real 2003 and the simulated files write it: the ones
#: listed, ``1B`` for the rest, IMGRAW ``<N*N>E`` with TDIM ``(N,N)``; no other column has a
#: TDIM, TZERO or TSCAL (see `validation_formats`). PIXTLM/BGDTYP: ``4A`` (4-character codes).
FILE_TFORMS: dict[str, str] = {
    **{name: "1B" for cols in FILE_COLUMNS.values() for name in cols if name != "IMGRAW"},
    **dict.fromkeys(["TIME", "END_INTEG_TIME"], "1D"),
    **dict.fromkeys(["QUALITY", "MJF", "MNF"], "1J"),
    **dict.fromkeys(["INTEG", "TEMPCCD", "TEMPHOUS", "TEMPPRIM", "TEMPSEC"], "1E"),
    **dict.fromkeys(["IMGROW0", "IMGCOL0", *UNSIGNED_COLUMNS], "1I"),
    **dict.fromkeys(OPTIONAL_DEFAULTS, "4A"),
}
#: Upper bounds of the file's frame counters: MJF has 17 bits (TLMAX 131071), MNF counts
#: 128 minor frames; the stop frame is the last row's plus up to 15 unwrapped (real: 135).
FRAME_KEYS = {"STARTMJF": 131071, "STARTMNF": 127, "STOPMJF": 131071, "STOPMNF": 127 + 15}

_U1 = np.uint8
# Reader dtype in canonical order. Native byte order; the TZERO=32768 columns stay unsigned
# (the original read them into signed >i2).
SLOT_DTYPE_FIELDS: list[tuple[str, Any]] = (
    [
        ("TIME", np.float64),
        ("QUALITY", np.int32),
        ("MJF", np.int32),
        ("MNF", np.int32),
        ("END_INTEG_TIME", np.float64),
        ("INTEG", np.float32),
        ("PIXTLM", "U4"),
        ("BGDTYP", "U4"),
        ("GLBSTAT", _U1),
        ("COMMCNT", _U1),
        ("COMMPROG", _U1),
        ("IMGFID1", _U1),
        ("IMGNUM1", _U1),
        ("IMGFUNC1", _U1),
        ("IMGSTAT", _U1),
        ("IMGROW0", np.int16),
        ("IMGCOL0", np.int16),
        ("IMGSCALE", np.uint16),
        ("BGDAVG", np.uint16),
        ("IMGFID2", _U1),
        ("IMGNUM2", _U1),
        ("IMGFUNC2", _U1),
        ("BGDRMS", np.uint16),
        ("TEMPCCD", np.float32),
        ("TEMPHOUS", np.float32),
        ("TEMPPRIM", np.float32),
        ("TEMPSEC", np.float32),
        ("BGDSTAT", _U1),
    ]
    + [(name, _U1) for name in _HDR34]
    + [("IMGRAW", np.float32)]
    + [(name, _U1) for name in HD3_COLUMNS]
    # FILENAME: archive names are 32 characters (33 after 2029); the original reserved 128.
    + [("IMGSIZE", np.int32), ("FILENAME", "U40")]
)
SLOT_COLUMNS = [name for name, _ in SLOT_DTYPE_FIELDS]


def slot_dtype(columns: list[str], centered_8x8: bool = False) -> np.dtype:
    """The structured dtype of `get_slot_data` for the given columns, in canonical order."""
    fields = []
    for name, dt in SLOT_DTYPE_FIELDS:
        if name in columns:
            shape = ((8, 8) if centered_8x8 else (64,)) if name == "IMGRAW" else ()
            fields.append((name, dt, shape) if shape else (name, dt))
    return np.dtype(fields)


def image_size(hdu: Any) -> int:
    """Image size (4, 6, 8) from the IMGRAW TDIM / repeat count."""
    col = hdu.columns["IMGRAW"]
    size = int(round(np.sqrt(col.format.repeat)))
    return size


@functools.cache
def validation_formats(size: int) -> dict[str, ColumnFormat]:
    """The exact column definitions of an L0 file of image size 4, 6 or 8."""
    out = {
        name: ColumnFormat(tform, tzero=32768 if name in UNSIGNED_COLUMNS else 0)
        for name, tform in FILE_TFORMS.items()
    }
    out["IMGRAW"] = ColumnFormat(f"{size * size}E", tdim=(size, size))
    return out


#: image sizes whose rows carry each column (the rest are masked in those rows)
COLUMN_SIZES: dict[str, tuple[int, ...]] = {
    name: tuple(size for size, cols in FILE_COLUMNS.items() if name in cols)
    or (4, 6, 8)  # PIXTLM/BGDTYP (defaulted), IMGSIZE, FILENAME: every row
    for name in SLOT_COLUMNS
}
#: What the store keeps per row (see `table_arrays`): strings as bytes, images as 64-vectors.
STORE_DTYPES: dict[str, np.dtype] = {
    name: np.dtype("S4" if name in OPTIONAL_DEFAULTS else (dt, (64,)) if name == "IMGRAW" else dt)
    for name, dt in SLOT_DTYPE_FIELDS
    if name != "FILENAME"
}
STORE_COLUMNS = list(STORE_DTYPES)


def table_arrays(data: Any, size: int) -> dict[str, np.ndarray]:
    """A file's rows in the reader's representation: every column (zeros where the size does
    not carry it), IMGRAW as 64-vectors with the image top-left, IMGSIZE per row. ``data``
    is astropy's ``FITS_rec`` or a `mica.engine.fastfits.FastTable`."""
    n = len(data)
    names = set(data.names)
    out: dict[str, np.ndarray] = {}
    for name, dt in SLOT_DTYPE_FIELDS:
        if name == "FILENAME":
            continue
        if name == "IMGSIZE":
            out[name] = np.full(n, size, dtype=dt)
        elif name == "IMGRAW":
            frame = np.zeros((n, 8, 8), dtype=np.float32)
            frame[:, :size, :size] = np.asarray(data["IMGRAW"]).reshape(n, size, size)
            out[name] = frame.reshape(n, 64)
        elif name in OPTIONAL_DEFAULTS:
            values = data[name] if name in names else np.full(n, OPTIONAL_DEFAULTS[name])
            out[name] = np.asarray(values).astype("S4")  # HDF5 keeps bytes, not unicode
        elif name in names:
            out[name] = np.asarray(data[name]).astype(dt, copy=False)
        else:
            out[name] = np.zeros(n, dtype=dt)
    return out


#: Store partitions: one chunk per slot and 10 days of file start times (CXC seconds), all
#: image sizes together in file order (so a slot's rows come out in order without a sort),
#: while a daily update rewrites at most one 10-day chunk per slot.
STORE_PERIOD = 10 * 86400
#: The header-3 view: TIME and the 12 header-3 bytes of the 8x8 rows (20 bytes a row), one
#: chunk per slot and 100 days, so `aca_hdr3` reads one or two datasets per slot for a month;
#: the chunks' time index keeps a short fetch to the blocks around it.
HD3_VIEW = "hd3"
HD3_VIEW_COLUMNS = ["TIME", *HD3_COLUMNS]
HD3_VIEW_PERIOD = 100 * 86400
#: The full view's layout number (`StoreView.layout`): its chunks of another number are served
#: from the files until rebuilt.
FULL_LAYOUT = 1


class L0Product(FileProduct):
    """One ACA L0 image file per slot and decommutation interval, in year/doy folders."""

    name = "aca-l0"
    subdir = "aca0"
    extname = "ACA_IMG0"
    filename_re = re.compile(r"acaf(\d{9,})N(\d{3})_(\d)_img0\.fits\.gz")
    stream_columns = ("slot",)
    index_columns = [
        *TIME_INDEX_COLUMNS,
        IndexColumn("startmjf", "int"),
        IndexColumn("startmnf", "int"),
        IndexColumn("stopmjf", "int"),
        IndexColumn("stopmnf", "int"),
        IndexColumn("checksum", "text"),
        IndexColumn("tlmver", "text"),
        IndexColumn("ascdsver", "text"),
        IndexColumn("revision", "int"),
        IndexColumn("date", "text not null"),
        IndexColumn("rows", "int not null"),
        IndexColumn("imgsize", "int not null"),
        IndexColumn("slot", "int not null"),
    ]
    index_sql = [
        "CREATE INDEX IF NOT EXISTS idx_archfiles_filetime ON archfiles (filetime)",
        "CREATE INDEX IF NOT EXISTS idx_archfiles_slot_tstart ON archfiles (slot, tstart)",
        # an ingest's overlap query per file (`ArchiveIndex.overlapping`): in time order only
        # the few files ending after a new file's start are visited, not ten days of a slot's
        "CREATE INDEX IF NOT EXISTS idx_archfiles_slot_tstop ON archfiles (slot, tstop)",
    ]

    reads_fast = True
    folder_columns = ("year", "doy")
    # (`table_arrays` reads imgsize, the header-3 sample tables' derivation slot)
    store_row_columns = ("filename", "checksum", "year", "doy", "imgsize", "slot")

    def name_time(self, name: str) -> float:
        return float(re.match(r"acaf(\d+)", name).group(1))

    def folder(self, row: dict[str, Any]) -> str:
        return f"{row['year']:04d}/{row['doy']:03d}"

    def describe(self, name: str, hdus: fits.HDUList) -> dict[str, Any]:
        hdu = hdus[self.extname]
        if not isinstance(hdu, fits.BinTableHDU):
            raise RejectedFile(name, f"{self.extname} is not a binary table")
        return self.describe_table(name, hdu)

    def describe_table(self, name: str, hdu: Any) -> dict[str, Any]:
        """Check an L0 table (astropy's ``BinTableHDU`` or a `mica.engine.fastfits.FastTable`)
        and return its index row."""
        match = self.filename_re.fullmatch(name)
        if "IMGRAW" not in hdu.columns.names:
            raise RejectedFile(name, "missing column IMGRAW")
        size = image_size(hdu)
        if size not in FILE_COLUMNS:
            raise RejectedFile(
                name, f"IMGRAW holds {hdu.columns['IMGRAW'].format}: not 4x4/6x6/8x8"
            )
        present = set(hdu.columns.names) - set(OPTIONAL_DEFAULTS)
        missing = [c for c in FILE_COLUMNS[size] if c not in present]
        if missing:
            raise RejectedFile(
                name, f"missing columns for {size}x{size} data: {', '.join(missing)}"
            )
        extra = sorted(present - set(FILE_COLUMNS[size]))
        if extra:
            raise RejectedFile(
                name, f"unexpected columns for {size}x{size} data: {', '.join(extra)}"
            )
        header = hdu.header
        try:
            tstart, tstop = header["TSTART"], header["TSTOP"]
            revision = int(header["REVISION"])
            frames = {k: header[k] for k in FRAME_KEYS}
        except (KeyError, ValueError, OverflowError) as err:
            raise RejectedFile(name, f"bad or missing header keyword ({err})") from err
        tstart, tstop = check_span(
            name, tstart, tstop, self.max_file_span, simulated=header.get(SIM_KEYWORD) is True
        )
        keys = {k.lower(): check_int(name, k, v, 0, FRAME_KEYS[k]) for k, v in frames.items()}
        filetime = int(match.group(1))
        if filetime != int(tstart):
            raise RejectedFile(name, f"name time {filetime} does not match TSTART {tstart}")
        if revision != int(match.group(2)):
            raise RejectedFile(
                name, f"REVISION {revision} does not match the name's N{match.group(2)}"
            )
        check_columns(name, hdu, validation_formats(size))
        # the values, on the arrays astropy decoded (vectorised: ingest speed matters)
        data = hdu.data
        check_times(name, data["TIME"], tstart, tstop)
        slot = int(match.group(3))
        imgnum = np.asarray(data["IMGNUM1"])
        wrong = np.flatnonzero(imgnum != slot)
        if len(wrong):
            raise RejectedFile(
                name,
                f"IMGNUM1 {imgnum[wrong[0]]} in {rows_text(len(wrong))} (first row "
                f"{wrong[0]}) is not the name's slot {slot}",
            )
        year, doy = year_doy(filetime)
        return {
            "filename": name,
            "filetime": filetime,
            "year": year,
            "doy": doy,
            "tstart": tstart,
            "tstop": tstop,
            **keys,
            "tlmver": str(header.get("TLMVER", "")),
            "ascdsver": str(header.get("ASCDSVER", "")),
            "revision": revision,
            "date": str(header.get("DATE", "")),
            "rows": int(header["NAXIS2"]),
            "imgsize": size,
            "slot": slot,
        }

    # Read together: time with the header-3 bytes (all of the header-3 view in one dataset)
    # and the image size (every masked fetch needs it: from the other columns' group it
    # cost a decompression of 79 byte planes for one), images, file index; other columns
    # form one more group, as a fetch of a few of them still costs one decompression.
    store = StoreDescription(
        dtypes=STORE_DTYPES,
        groups={"KEY": [*HD3_VIEW_COLUMNS, "IMGSIZE"], "IMGRAW": ["IMGRAW"]},
        views=[
            # layout 1: byte planes in 4096-row chunks, a plane one Blosc block, images in
            # 64 kB blocks (`mica.engine.colstore._chunk_rows`, `_block_bytes`)
            StoreView("", STORE_COLUMNS, STORE_PERIOD, keys=("slot",), layout=FULL_LAYOUT),
            StoreView(
                HD3_VIEW, HD3_VIEW_COLUMNS, HD3_VIEW_PERIOD, ("slot",), {"imgsize": 8}, alone=True
            ),
            # the header-3 sample view: every slot's 8x8 files per 100 days (and those within
            # its reach), with the per-slot sample tables `mica.products.hdr3_samples` and the
            # items' statistics `mica.products.hdr3_stats` derives from them
            StoreView(
                SAMPLES_VIEW,
                HD3_VIEW_COLUMNS,
                HD3_VIEW_PERIOD,
                (),
                {"imgsize": 8},
                alone=True,
                derive=hdr3_tables,
                reach=SAMPLES_REACH,
                span=FileProduct.max_file_span,
                layout=SAMPLES_LAYOUT,
            ),
        ],
        tables=[DAILY_TABLE],  # the items' daily statistics over the mission, in one file
    )

    def store_arrays(self, hdus: fits.HDUList, row: dict[str, Any]) -> dict[str, np.ndarray]:
        return self.table_arrays(hdus[self.extname], row)

    def table_arrays(self, hdu: Any, row: dict[str, Any]) -> dict[str, np.ndarray]:
        return table_arrays(hdu.data, row["imgsize"])


L0 = L0Product()
