"""The aspect level-1 product (``asp1``): file names, validation, index rows, processing table.

One set of files per aspect interval, in ``asp1/<CC>/<OOOOO>_v<RR>/`` (`ASP_L1`, an
`mica.engine.obsid_layout.ObsidProduct`), and the ``aspect_1_proc`` table the archive keeps
beside its index (`update_processing` after each relink, `proc_rows` for the reader). The user
functions are in `mica.archive.asp_l1`; the generic per-obsid reads in `mica.engine.obsid_read`.
"""

from __future__ import annotations

import gzip
import re
import sqlite3
import zlib
from pathlib import Path
from typing import Any

from astropy.io import fits

from mica.engine.atomic import make_file
from mica.engine.index import (
    LOCK_WAIT,
    ArchiveIndex,
    close_writer,
    connect_readonly,
    creation_interrupted,
    require_archive,
)
from mica.engine.obsid_layout import OBSID_MAX, OBSID_MIN, ObsidProduct, version_dir
from mica.engine.product import TIME_INDEX_COLUMNS, IndexColumn, RejectedFile
from mica.engine.provenance import SIM_KEYWORD
from mica.engine.validate import (
    ColumnFormat,
    check_columns,
    check_int,
    check_span,
    check_times,
)
from mica.time import year_doy

#: CONTENT by file-name type suffix
ASP_SUFFIX_CONTENT = {
    "asol1": "ASPSOL",
    "aqual1": "ASPQUAL",
    "acal1": "ACACAL",
    "acen1": "ACACENT",
    "gspr1": "GSPROPS",
    "fidpr1": "FIDPROPS",
    "gcal1": "GYROCAL",
    "bpix1": "ACA_BADPIX",
}
#: contents `get_files` returns by default: those archived (ACADATA, GYRODATA and KALMAN are
#: dropped at ingest, so the original's list naming them matched nothing) minus ASPSOLOBI
ASP_DEFAULT_CONTENTS = (
    "ASPQUAL",
    "ASPSOL",
    "ACACAL",
    "ACACENT",
    "GSPROPS",
    "FIDPROPS",
    "GYROCAL",
    "ACA_BADPIX",
)
ASP_ALL_CONTENTS = ASP_DEFAULT_CONTENTS + ("ASPSOLOBI",)
#: columns a compatible reader must find, by content (lower case)
ASP_REQUIRED_COLUMNS = {
    "ASPSOL": ("time", "ra", "dec", "roll", "q_att", "dy", "dz", "dtheta"),
    "ASPSOLOBI": ("time", "ra", "dec", "roll", "q_att"),
    "ASPQUAL": ("time", "asp_sol_status"),
    "ACACAL": ("aca_misalign", "fts_misalign"),
    "ACACENT": (
        "time",
        "slot",
        "alg",
        "status",
        "ang_y",
        "ang_z",
        "ang_y_sm",
        "ang_z_sm",
        "counts",
    ),
    "GSPROPS": ("slot", "id_status", "type", "cel_loc_flag", "agasc_id", "ra", "dec", "pos_eci"),
    "FIDPROPS": ("slot", "id_status", "id_string", "p_lsi", "ang_y_nom", "ang_z_nom"),
    "GYROCAL": (),
    "ACA_BADPIX": (),
}
_ASP_AI_RE = re.compile(
    r"pcadf(\d{9,})N(\d{3})_(asol|aqual|acal|acen|gspr|fidpr|gcal|bpix)1"
    r"\.fits\.gz"
)
#: OBIs have three digits in file names
MAX_OBI = 999
_ASP_OBI_RE = re.compile(r"pcadf(\d{5})_(\d{3})N(\d{3})_asol1\.fits\.gz")


class AspL1Product(ObsidProduct):
    """Aspect L1 products, one set per aspect interval, in ``asp1/<CC>/<OOOOO>_v<RR>/``."""

    name = "asp-l1"
    subdir = "asp1"
    extname = "PRIMARY"  # tables are checked by content in `describe`
    filename_re = re.compile(f"{_ASP_AI_RE.pattern}|{_ASP_OBI_RE.pattern}")
    drop_re = re.compile(r"pcadf\d+N\d{3}_(adat\d1|gdat1|kalm1)\.fits(\.gz)?")
    extra_re = re.compile(r"asp_l1_\w*\.log(\.gz)?")
    contents = ASP_DEFAULT_CONTENTS
    all_contents = ASP_ALL_CONTENTS
    suffix_contents = ASP_SUFFIX_CONTENT
    bad_obsids_file = "asp_l1_bad_obsids.dat"
    # the original's asp_l1_bad_obsids.dat: provisional data never re-checked
    default_bad_obsids = (
        36,
        37,
        1452,
        1855,
        1856,
        2593,
        2586,
        2587,
        3366,
        3367,
        3679,
        3678,
        3685,
        3686,
        5049,
        5048,
        5047,
        5046,
        5964,
        5963,
        5962,
        5961,
        6447,
        6448,
        6445,
        6446,
        61927,
        62248,
        62549,
        62550,
        62552,
        62553,
        62556,
        62558,
    )
    # Files of one obsid, revision, OBI and content never overlap in time: a second one
    # that does is refused (unless it covers exactly the same span: a re-delivery).
    stream_columns = ("obsid", "revision", "obi", "content")
    max_file_span = 10 * 86400.0
    index_columns = [
        *TIME_INDEX_COLUMNS,
        IndexColumn("checksum", "text"),
        IndexColumn("ascdsver", "text"),
        IndexColumn("caldbver", "text"),
        IndexColumn("content", "text"),
        IndexColumn("revision", "int"),
        IndexColumn("obsid", "int not null"),
        IndexColumn("obi", "int"),
        IndexColumn("date", "text not null"),
        IndexColumn("isdefault", "int"),
    ]
    index_sql = ObsidProduct.index_sql + (
        "CREATE INDEX IF NOT EXISTS idx_archfiles_filetime ON archfiles (filetime)",
        "CREATE INDEX IF NOT EXISTS idx_archfiles_obsid ON archfiles (obsid, revision)",
        "CREATE INDEX IF NOT EXISTS idx_archfiles_tstart ON archfiles (tstart)",
        "CREATE INDEX IF NOT EXISTS idx_archfiles_tstop ON archfiles (tstop)",
    )

    def name_time(self, name: str) -> float:
        match = _ASP_AI_RE.fullmatch(self.archive_name(name))
        return float(match.group(1)) if match else float("nan")  # per-OBI names carry no time

    def name_obsid(self, name: str) -> int | None:
        match = _ASP_OBI_RE.fullmatch(self.archive_name(name))
        return int(match.group(1)) if match else None

    def inspect(self, path: Path) -> tuple[int | None, float | None]:
        """(OBS_ID, TSTART) from the primary header cards (read without a FITS parser)."""
        try:
            with gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb") as fh:
                head = fh.read(2880 * 4).decode("ascii", "replace")
        except (OSError, EOFError, zlib.error) as err:
            raise RejectedFile(path.name, f"unreadable file ({err})") from err
        cards = {}
        for i in range(0, len(head) - 79, 80):
            key, eq, rest = head[i : i + 8].strip(), head[i + 8 : i + 10], head[i + 10 : i + 80]
            if key == "END":
                break
            if eq == "= ":
                cards[key] = rest.split("/")[0].strip().strip("'").strip()
        try:
            obsid = int(cards["OBS_ID"])
            tstart = float(cards["TSTART"])
        except (KeyError, ValueError) as err:
            raise RejectedFile(
                path.name, f"no OBS_ID/TSTART in the primary header ({err})"
            ) from err
        return obsid, tstart

    def describe(self, name: str, hdus: fits.HDUList) -> dict[str, Any]:
        if len(hdus) < 2 or not isinstance(hdus[1], fits.BinTableHDU):
            raise RejectedFile(name, "HDU 1 is not a binary table")
        header = hdus[1].header
        ai = _ASP_AI_RE.fullmatch(name)
        obi_match = _ASP_OBI_RE.fullmatch(name)
        if ai:
            revision_name, expected = int(ai.group(2)), ASP_SUFFIX_CONTENT[ai.group(3) + "1"]
        else:
            revision_name, expected = int(obi_match.group(3)), "ASPSOLOBI"
        try:
            tstart, tstop = header["TSTART"], header["TSTOP"]
            content = str(header["CONTENT"]).strip()
            revision = int(header["REVISION"])
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise RejectedFile(name, f"bad or missing header keyword ({err})") from err
        # the name gives the OBI of per-OBI files only: bound it for the per-revision ones
        obi = check_int(name, "OBI_NUM", header.get("OBI_NUM", 0), 0, MAX_OBI)
        tstart, tstop = check_span(
            name, tstart, tstop, self.max_file_span, simulated=header.get(SIM_KEYWORD) is True
        )
        if content != expected:
            raise RejectedFile(name, f"CONTENT {content!r} does not match the name ({expected})")
        if revision != revision_name:
            raise RejectedFile(
                name, f"REVISION {revision} does not match the name's N{revision_name:03d}"
            )
        if ai and abs(int(ai.group(1)) - tstart) > 100.0:
            raise RejectedFile(name, f"name time {ai.group(1)} is far from TSTART {tstart}")
        obsid = _header_obsid(name, header)
        if obi_match and (obsid != int(obi_match.group(1)) or obi != int(obi_match.group(2))):
            raise RejectedFile(name, f"OBS_ID {obsid} / OBI_NUM {obi} do not match the name")
        names = {n.lower() for n in hdus[1].columns.names}
        missing = [c for c in ASP_REQUIRED_COLUMNS[content] if c not in names]
        if missing:
            raise RejectedFile(name, f"{content} file lacks columns {', '.join(missing)}")
        if "time" in ASP_REQUIRED_COLUMNS[content]:
            _check_time_column(name, hdus[1], content, tstart, tstop)
        year, doy = year_doy(tstart)
        # filetime from TSTART: the first digit run of per-OBI names is the obsid (flaw 11)
        return {
            "filename": name,
            "filetime": int(tstart),
            "year": year,
            "doy": doy,
            "tstart": tstart,
            "tstop": tstop,
            "ascdsver": _text(header, "ASCDSVER"),
            "caldbver": _text(header, "CALDBVER"),
            "content": content,
            "revision": revision,
            "obsid": obsid,
            "obi": obi,
            "date": _text(header, "DATE"),
            "isdefault": None,
        }

    def after_relink(self, index: ArchiveIndex, obsid: int) -> None:
        update_processing(index, obsid)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _text(header: fits.Header, key: str) -> str:
    return str(header.get(key, "")).strip()


#: How far an aspect L1 row's time may lie outside the file's TSTART..TSTOP (s): simulated
#: ACACENT rows (image times) reach 1.2 s past TSTOP, the solution files stay inside; the
#: margin is two 8x8 image periods.
ASP_TIME_MARGIN = 8.2


def _check_time_column(
    name: str, hdu: fits.BinTableHDU, content: str, tstart: float, tstop: float
) -> None:
    """The ``time`` column: 64-bit floats, finite, inside the file's span and, except for
    ACACENT (rows of several slots), non-decreasing (readers search it)."""
    column = next(c for c in hdu.columns.names if c.lower() == "time")
    check_columns(name, hdu, {column: ColumnFormat("1D")})
    check_times(
        name,
        hdu.data[column],
        tstart,
        tstop,
        ASP_TIME_MARGIN,
        ASP_TIME_MARGIN,
        column=column,
        ordered=content != "ACACENT",
    )


def _header_obsid(name: str, header: fits.Header) -> int:
    try:
        obsid = int(str(header["OBS_ID"]).strip())  # a string in real files ('6120')
    except (KeyError, ValueError) as err:
        raise RejectedFile(name, f"bad or missing OBS_ID ({err})") from err
    if not OBSID_MIN <= obsid <= OBSID_MAX:
        raise RejectedFile(name, f"OBS_ID {obsid} is not an obsid")
    return obsid


ASP_L1 = AspL1Product()


# --- aspect_1_proc (processing table of the aspect L1 archive) ---------------------------------
PROC_DB = "processing_asp_l1.db3"
_PROC_SQL = """
CREATE TABLE IF NOT EXISTS aspect_1_proc (
    aspect_1_id int NOT NULL PRIMARY KEY,
    obsid int NOT NULL,
    obi int NOT NULL,
    revision int,
    ap_date text,
    isdefault int,
    obspar_version int,
    vv_complete int NOT NULL DEFAULT 0
)
"""
_LOG_OBSPAR_RE = re.compile(r"axaff\d{5}_\d{3}N(\d{3})_obs0a\.par")
_LOG_ID_RE = re.compile(r"aspect_1_id\s*[=:]\s*(\d+)")
_LOG_DATE_RE = re.compile(r"ap_date\s*[=:]\s*(\S+)")


def proc_connect(root: Path) -> sqlite3.Connection:
    make_file(Path(root) / PROC_DB)  # the archive's mode, not SQLite's 644
    conn = sqlite3.connect(Path(root) / PROC_DB, timeout=LOCK_WAIT, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(_PROC_SQL)
    return conn


def _read_log(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", "replace")


def update_processing(index: ArchiveIndex, obsid: int) -> None:
    """Insert or refresh the ``aspect_1_proc`` rows of an obsid from its ASPSOL files.

    The processing id and date come from the pipeline log (the original read them from the
    CXC Sybase ``aspect_1`` table, unreachable outside the CXC); without them the id is
    derived as ``obsid * 10000 + obi * 100 + revision``. ``vv_complete`` is reset to 0
    only for a new processing id.
    """
    rows = index.conn.execute(
        "SELECT r.obsid, r.revision, a.obi, a.filename, a.isdefault FROM revisions r JOIN "
        "archfiles a ON a.obsid = r.obsid AND a.revision = r.revision "
        "WHERE r.obsid = ? AND a.content = 'ASPSOL' ORDER BY a.tstart",
        (obsid,),
    ).fetchall()
    conn = proc_connect(index.root)
    try:
        conn.execute("BEGIN IMMEDIATE")
        seen = set()
        for _, revision, obi, _filename, isdefault in rows:
            if (revision, obi) in seen:
                continue
            seen.add((revision, obi))
            folder = version_dir(index.root, obsid, revision)
            logs = sorted(folder.glob("asp_l1_f*log*"))
            text = _read_log(logs[0]) if logs else ""
            ver = _LOG_OBSPAR_RE.search(text)
            ident = _LOG_ID_RE.search(text)
            date = _LOG_DATE_RE.search(text)
            aspect_1_id = int(ident.group(1)) if ident else obsid * 10000 + obi * 100 + revision
            conn.execute(
                "INSERT OR IGNORE INTO aspect_1_proc (aspect_1_id, obsid, obi, revision,"
                " ap_date, isdefault, obspar_version, vv_complete) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    aspect_1_id,
                    obsid,
                    obi,
                    revision,
                    date.group(1) if date else None,
                    isdefault,
                    int(ver.group(1)) if ver else None,
                ),
            )
            conn.execute(
                "UPDATE aspect_1_proc SET isdefault = ? WHERE aspect_1_id = ?",
                (isdefault, aspect_1_id),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        close_writer(conn)


def proc_rows(root: Path, obsid: int | None = None) -> list[dict[str, Any]]:
    """Rows of ``aspect_1_proc`` (all, or one obsid's), ordered by processing id.

    Empty when the aspect L1 archive has no processing table yet; `MissingArchiveError`
    when ``root`` holds no aspect L1 archive at all.
    """
    require_archive(ASP_L1.name, root)
    if not (Path(root) / PROC_DB).exists():
        return []
    conn = connect_readonly(Path(root) / PROC_DB)
    conn.row_factory = sqlite3.Row
    try:
        # `proc_connect` creates the file before the table: an update killed in between
        # (or one creating it now) leaves a file without the table, which holds no row yet
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'aspect_1_proc'"
        try:
            if conn.execute(table).fetchone() is None:
                return []
        except sqlite3.OperationalError:
            if creation_interrupted(Path(root) / PROC_DB):  # killed before its WAL mode
                return []
            raise
        if obsid is None:
            cur = conn.execute("SELECT * FROM aspect_1_proc ORDER BY aspect_1_id")
        else:
            cur = conn.execute(
                "SELECT * FROM aspect_1_proc WHERE obsid = ? ORDER BY aspect_1_id", (obsid,)
            )
        return [dict(r) for r in cur]
    finally:
        conn.close()
