"""The text services of the public Chandra Data Archive, parsed: the archive file list
(`parse_file_list`) and the Ocat's quasi-RDB lists (`parse_rdb`, `ocat_interval`), their
columns named as the original mica named them (`ocat_column_name`).

Used by the ``cda`` source (`mica.sources.cda`) and the web services of
`mica.sources.cda_services`; the services are described there.
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


#: The Ocat summary's column names (as `ocat_column_name` first makes them) that differ from
#: the details' names of the same quantity: the original mica's translation, so that both
#: lists have the details' names
OCAT_SUMMARY_NAMES = {
    "obs_id": "obsid",
    "grating": "grat",
    "instrument": "instr",
    "appr_exp": "app_exp",
    "exposure": "exp_time",
    "data_mode": "datamode",
    "exp_mode": "mode",
    "avg_cnt_rate": "count_rate",
    "public_release_date": "public_avail",
    "proposal_num": "pr_num",
    "science_category": "category",
    "alternate_group": "alt_group",
    "appr._triggers": "alt_trig",
}


def ocat_column_name(raw: str) -> str:
    """The name of an Ocat list column as the original mica gave it: lower case, ``" (ks)"``
    dropped, spaces as ``_``, summary names as the details' (`OCAT_SUMMARY_NAMES`)."""
    name = raw.strip().lower().replace(" (ks)", "").replace(" ", "_")
    return OCAT_SUMMARY_NAMES.get(name, name)


def parse_rdb(text: str) -> list[dict[str, str]]:
    """Ocat "quasi-RDB" text: ``#`` comments, header, type line, tab-separated rows; the
    columns named by `ocat_column_name`, the values as text."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) < 2:
        return []
    names = [ocat_column_name(n) for n in lines[0].split("\t")]
    return [dict(zip(names, (f.strip() for f in ln.split("\t")), strict=False)) for ln in lines[2:]]


#: The Ocat columns of an observation's interval: its start (UTC) and its exposure (ks)
OCAT_START, OCAT_EXPOSURE = "start_date", "exp_time"


def ocat_interval(rows: list[dict[str, str]], obsid: int) -> tuple[float, float] | None:
    """(tstart, tstop) in CXC seconds of ``obsid`` from Ocat rows: ``start_date`` (UTC,
    ``YYYY-MM-DD hh:mm:ss``) and the start plus ``exp_time`` (ks)."""
    from mica.time import to_secs

    for row in rows:
        if str(row.get("obsid", obsid)).strip() not in (str(obsid), ""):
            continue
        start, exposure = row.get(OCAT_START, "").strip(), row.get(OCAT_EXPOSURE, "").strip()
        if not start or not exposure:
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
