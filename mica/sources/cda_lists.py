"""The text services of the public Chandra Data Archive, parsed: the archive file list
(`parse_file_list`) and the Ocat's quasi-RDB lists (`parse_rdb`, `ocat_interval`).

Used by the ``cda`` source (`mica.sources.cda`); the services are described there.
"""

from __future__ import annotations

from dataclasses import dataclass

from mica.engine.source import SourceError


@dataclass
class Listed:
    """One file of the archive file list."""

    name: str  # as listed, uncompressed (``pcadf..._asol1.fits``)
    size: int | None  # uncompressed bytes


def parse_file_list(text: str) -> list[Listed]:
    """Rows of the archive file-list service (``Filename``, ``Filesize`` with commas)."""
    out = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if header is None:
            header = [f.lower() for f in fields]
            if "filename" not in header:
                raise SourceError(f"unexpected archive file list header: {line[:200]!r}")
            continue
        row = dict(zip(header, fields, strict=False))
        size = row.get("filesize", "").replace(",", "")
        out.append(Listed(row["filename"], int(size) if size.isdigit() else None))
    return out


def parse_rdb(text: str) -> list[dict[str, str]]:
    """Ocat "quasi-RDB" text: ``#`` comments, header, type line, tab-separated rows.

    Column names are lower-cased, ``" (ks)"`` dropped, spaces become ``_`` and the summary
    name ``obs_id`` becomes ``obsid``.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) < 2:
        return []
    names = [n.strip().lower().replace(" (ks)", "").replace(" ", "_") for n in lines[0].split("\t")]
    names = ["obsid" if n == "obs_id" else n for n in names]
    return [dict(zip(names, (f.strip() for f in ln.split("\t")), strict=False)) for ln in lines[2:]]


#: Ocat details columns (as `parse_rdb` names them) of the start date and the exposure (ks)
_OCAT_START = ("start_date", "startdate", "start")
_OCAT_EXPOSURE = ("exposure", "exposure_time", "exp_time", "approved_exposure_time")


def ocat_interval(rows: list[dict[str, str]], obsid: int) -> tuple[float, float] | None:
    """(tstart, tstop) in CXC seconds of ``obsid`` from Ocat details rows: the start date
    (UTC, ``YYYY-MM-DD hh:mm:ss``) and the start plus the exposure (ks)."""
    from mica.time import to_secs

    for row in rows:
        if str(row.get("obsid", obsid)).strip() not in (str(obsid), ""):
            continue
        start = next((row[k] for k in _OCAT_START if row.get(k, "").strip()), None)
        exposure = next((row[k] for k in _OCAT_EXPOSURE if row.get(k, "").strip()), None)
        if start is None or exposure is None:
            return None
        try:
            tstart = float(to_secs(start.strip().replace(" ", "T")))
            return tstart, tstart + float(exposure) * 1000.0
        except ValueError as err:
            raise SourceError(
                f"Ocat details of obsid {obsid}: unusable start {start!r} or exposure "
                f"{exposure!r} ({err})"
            ) from err
    return None
