"""The public Chandra Data Archive's web services as the original mica gave them.

`get_ocat_web` (the Observation Catalog, summary or details), `get_ocat_local` (a local
HDF5 copy of the details, written by `update_ocat_local`), `get_archive_file_list` and
`get_proposal_abstract`, with the original's parameters, column names and types; users
import them from `mica.archive.cda`.

Requests go through the ``cda`` source's client (`mica.sources.cda.CDASource.service`):
``MICA_CDA_URL`` names another server (a mirror, a test server), redirects stay on its
hosts, 5xx answers and dropped connections are retried, and ``timeout`` bounds the whole
request, retries included (the original bounded each socket operation). A failed request
raises `SourceError`, a ``RuntimeError`` as the original's was.

What the services answer:

* ``ocatList.do`` (summary, 26 columns) and ``ocatDetails.do`` (details, 124 columns), asked
  with ``format=text``: "quasi-RDB" text, ``#`` comment lines, a tab-separated header, a
  line of column widths (``20``) and numeric types (``20N``), then the rows; only comments
  when nothing matches. Columns are named as the original named them
  (`mica.sources.cda_lists.ocat_column_name`: lower case, summary names translated to the
  details'), numbers typed, empty values masked, some columns given units (`OCAT_UNITS`);
  ``ra`` and ``dec`` are asked sexagesimal (the decimal ones have three digits) and
  returned in decimal degrees.
* ``archiveFileList.do``: tab-separated ``Filename``, ``Filesize`` (thousands commas),
  ``Timestamp``; returned as a table with ``Filesize`` an integer.
* ``propAbstract.do``: an HTML page whose text holds ``Proposal Title:``, ``Proposal
  Number:``, ``Principal Investigator:`` and ``Abstract:`` sections; returned as a dict
  keyed ``proposal_title``, ``proposal_number``, ``principal_investigator``, ``abstract``.
"""

from __future__ import annotations

import os
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from astropy.table import MaskedColumn, Table

from mica import config
from mica.sources.cda import DEFAULT_SERVICES, CDASource
from mica.sources.cda_lists import ocat_column_name

__all__ = [
    "get_archive_file_list",
    "get_ocat_local",
    "get_ocat_web",
    "get_proposal_abstract",
    "update_ocat_local",
]

URL_CDA_SERVICES = DEFAULT_SERVICES
#: the original's service names -> the services' page names
CDA_SERVICES = {
    "prop_abstract": "propAbstract",
    "ocat_summary": "ocatList",
    "ocat_details": "ocatDetails",
    "archive_file_list": "archiveFileList",
}
#: units of the Ocat columns that have one
OCAT_UNITS = {
    "app_exp": "ks",
    "count_rate": "s**-1",
    "est_cnt_rate": "s**-1",
    "evfil_lo": "keV",
    "evfil_ra": "keV",
    "exp_time": "ks",
    "f_time": "s",
    "forder_cnt_rate": "s**-1",
    "soe_roll": "degree",
    "x_sim": "mm",
    "y_off": "arcmin",
    "z_off": "arcmin",
    "z_sim": "mm",
}
#: the local Ocat copy's file, in the archive root
OCAT_TABLE_NAME = "ocat_target_table.h5"
#: Ocat query parameters that change the table returned (always a table then)
_SPECIAL = {"acisWindows", "rollReqs", "timeReqs"}
#: the sections of a proposal abstract's text, in order
_ABSTRACT_SECTIONS = ["Proposal Title", "Proposal Number", "Principal Investigator", "Abstract"]


def ocat_table_path() -> Path:
    """``<archive root>/ocat_target_table.h5``: where `get_ocat_local` reads by default."""
    return config.archive_root() / OCAT_TABLE_NAME


class _Text(HTMLParser):
    """The text of an HTML page (its character data, in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """The text of an HTML page, runs of newlines made one."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return re.sub(r"\n+", "\n", "".join(parser.parts))


def clean_text(text: str) -> str:
    """ASCII only, on one line, stripped."""
    out = text.encode("ascii", errors="ignore").decode("ascii")
    return out.replace("\n", " ").replace("\r", "").strip()


def _service_text(service: str, timeout: float = 60, **params: Any) -> str:
    """The text a CDA service answers to ``params`` (``verbose=True`` prints the URL)."""
    if service not in CDA_SERVICES:
        raise ValueError(f"unknown service {service!r}, must be one of {list(CDA_SERVICES)}")
    verbose = params.pop("verbose", False)
    query = {k: str(v) for k, v in params.items()}
    source = CDASource(timeout=timeout, file_deadline=timeout, progress=False)
    try:
        if verbose:
            print(f"GET {source.services}/{CDA_SERVICES[service]}.do?{urlencode(query)}")
        return source.service(CDA_SERVICES[service], query)
    finally:
        source.close()


def get_archive_file_list(
    obsid: int | str, detector: str, level: int | float | str, dataset: str = "flight", **params
) -> Table:
    """The archive's files of an observation, detector, level and dataset.

    Parameters
    ----------
    obsid : int or str
        Observation id.
    detector : str
        Detector name (``'pcad'``, ``'acis'``).
    level : int, float or str
        Processing level (0, 0.5, 1, 1.5, 2, 3).
    dataset : str
        Dataset name (default ``'flight'``).
    **params
        Further filters of the service: ``subdetector``, ``filetype``, ``obi``,
        ``filename``; ``timeout`` (s, default 60).

    Returns
    -------
    astropy.table.Table
        Columns ``Filename`` (str), ``Filesize`` (int, bytes uncompressed), ``Timestamp``
        (str).
    """
    params.update(dataset=dataset, detector=detector, level=level, obsid=obsid)
    text = _service_text("archive_file_list", **params)
    dat = Table.read(text.splitlines(), format="ascii.basic", delimiter="\t", guess=False)
    dat["Filesize"] = np.array([int(str(x).replace(",", "")) for x in dat["Filesize"]], dtype=int)
    return dat


def get_proposal_abstract(
    obsid: int | str | None = None, propnum: str | None = None, timeout: float = 60
) -> dict[str, str]:
    """A proposal's title, number, principal investigator and abstract.

    Parameters
    ----------
    obsid : int or str, optional
        Observation id.
    propnum : str, optional
        Proposal number with its leading zeros (``'08900073'``); one of the two is needed.
    timeout : float
        Seconds the request may take.

    Returns
    -------
    dict
        ``proposal_title``, ``proposal_number``, ``principal_investigator``, ``abstract``
        (ASCII text on one line, the abstract whole); a section the page lacks is warned
        about and left out.
    """
    params: dict[str, Any] = {}
    if obsid is not None:
        params["obsid"] = obsid
    if propnum is not None:
        params["propNum"] = propnum
    if not params:
        raise ValueError("must provide obsid or propnum")
    text = html_to_text(_service_text("prop_abstract", timeout=timeout, **params))
    out = {}
    # Each section runs to the next one's header, the abstract to the end of the page (the
    # original took it to the page's last colon, which cut abstracts holding one).
    for name, following in zip(_ABSTRACT_SECTIONS, [*_ABSTRACT_SECTIONS[1:], None]):
        key = "_".join(word.lower() for word in name.split())
        end = r"\Z" if following is None else f"{following}:"
        match = re.search(rf"{name}:(.+){end}", text, re.DOTALL)
        if match:
            out[key] = clean_text(match.group(1))
        else:
            warnings.warn(f"failed to find {name} in result", stacklevel=2)
    return out


def _query_params(
    params: dict[str, Any],
    obsid: Any,
    target_name: str | None,
    resolve_name: bool,
    ra: float | None,
    dec: float | None,
    radius: float,
) -> dict[str, Any]:
    """The Ocat service's parameters from the keyword arguments of `get_ocat_web`."""
    if obsid is not None:
        params["obsid"] = obsid
    if ra is not None:
        params["ra"] = ra
    if dec is not None:
        params["dec"] = dec
    if target_name is not None:
        if resolve_name:
            params["ra"], params["dec"] = _resolve(target_name)
        else:
            params["target"] = target_name  # the service matches it as a substring
    if "ra" in params and "dec" in params:
        params["radius"] = radius
    return params


def _resolve(target_name: str) -> tuple[float, float]:
    """(ra, dec) in degrees of a named object (astropy's name resolver: a web query)."""
    from astropy.coordinates import SkyCoord

    coord = SkyCoord.from_name(target_name)
    return float(coord.ra.deg), float(coord.dec.deg)


def get_ocat_web(
    obsid: int | str | None = None,
    *,
    summary: bool = False,
    target_name: str | None = None,
    resolve_name: bool = False,
    ra: float | None = None,
    dec: float | None = None,
    radius: float = 1.0,
    return_type: str = "auto",
    timeout: float = 60,
    **params: Any,
) -> Table | dict[str, Any]:
    """The Observation Catalog (Ocat) from the CDA web services.

    Parameters
    ----------
    obsid : int or str, optional
        Observation id, or a list or ranges of them (``'100,200-300'``).
    summary : bool
        The summary (26 columns) instead of the details (124 columns).
    target_name : str, optional
        Resolved to ``ra``/``dec`` with ``resolve_name``, else matched as a substring of
        the target names.
    resolve_name : bool
        Resolve ``target_name`` (astropy's name resolver, a web query).
    ra, dec : float, optional
        Cone centre, decimal degrees.
    radius : float
        Cone radius, arcmin (default 1).
    return_type : {'auto', 'table'}
        ``'auto'``: a dict when ``obsid`` is one integer and one row matched, else a
        table; ``'table'``: always a table.
    timeout : float
        Seconds the request may take (default 60).
    **params
        Parameters of the service: ``instrument``, ``grating``, ``type``, ``cycle``,
        ``category``, ``status``, ``piName``, ``observer``, ``propNum``, ``seqNum``,
        ``startDate`` (``YYYY-MM-DD/YYYY-MM-DD``), ``maxResults``, ...; ``acisWindows``,
        ``rollReqs`` or ``timeReqs`` = ``'true'`` give those tables of one obsid.

    Returns
    -------
    astropy.table.Table or dict

    Raises
    ------
    ValueError
        ``return_type`` 'auto' with one integer obsid that the Ocat does not list, or a
        ``return_type`` other than 'auto' and 'table'.
    """
    if _SPECIAL & set(params):
        return_type = "table"
    _check_return_type(return_type)
    _query_params(params, obsid, target_name, resolve_name, ra, dec, radius)
    params["format"] = "text"
    params["outputCoordUnits"] = "sexagesimal"  # decimal has three digits only
    service = "ocat_summary" if summary else "ocat_details"
    dat = ocat_rdb_table(_service_text(service, timeout=timeout, **params))
    if dat is None:  # nothing matched: the service answers no header then
        if return_type == "auto" and _is_int(params.get("obsid")):
            raise ValueError(f"failed to find obsid {params['obsid']}")
        # the columns, from a query that matches (the original's way)
        return get_ocat_web(summary=summary, return_type="table", obsid=8000, timeout=timeout)[:0]
    return _decimal_coords(_table_or_dict(return_type, params.get("obsid"), dat))


def _decimal_coords(dat: Table | dict[str, Any]) -> Table | dict[str, Any]:
    """``ra`` (hours) and ``dec`` (degrees) sexagesimal made decimal degrees."""
    names = dat.colnames if isinstance(dat, Table) else list(dat)
    if "ra" not in names or "dec" not in names:
        return dat
    if isinstance(dat, Table) and len(dat) == 0:
        dat["ra"], dat["dec"] = np.zeros(0), np.zeros(0)
        return dat
    from astropy.coordinates import SkyCoord

    coord = SkyCoord(dat["ra"], dat["dec"], unit="hourangle,deg")
    dat["ra"], dat["dec"] = coord.ra.deg, coord.dec.deg
    return dat


def ocat_rdb_table(text: str) -> Table | None:
    """The table of an Ocat service's quasi-RDB text (None: comments only, no match)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if not line.startswith("#")), None)
    if start is None or start + 1 >= len(lines):
        return None
    # widths ("20") made RDB string types ("20S"); numeric types ("20N") stay
    types = lines[start + 1].split("\t")
    lines[start + 1] = "\t".join(t if t[-1:] in ("N", "S") else f"{t}S" for t in types)
    dat = Table.read(lines[start:], format="ascii.rdb", guess=False)
    dat.rename_columns(dat.colnames, [ocat_column_name(n) for n in dat.colnames])
    _set_units(dat)
    return dat


def _set_units(dat: Table) -> None:
    for name, col in dat.columns.items():
        if name in OCAT_UNITS:
            col.info.unit = OCAT_UNITS[name]


def _is_int(value: Any) -> bool:
    """Whether a value reads as one integer (``4911``, ``'4911'``; not ``'100-200'``)."""
    try:
        return int(value) == float(value)
    except (ValueError, TypeError):
        return False


def _check_return_type(return_type: str) -> None:
    if return_type not in ("auto", "table"):
        raise ValueError(f"invalid return_type {return_type!r}, must be 'auto' or 'table'")


def _table_or_dict(return_type: str, obsid: Any, dat: Table) -> Table | dict[str, Any]:
    """The table, or its one row as a dict (``return_type`` 'auto', one integer obsid)."""
    _check_return_type(return_type)
    if return_type == "auto" and _is_int(obsid):
        if len(dat) != 1:
            raise ValueError(f"failed to find obsid {obsid}")
        return dict(dat[0])
    return dat


def update_ocat_local(datafile: str | os.PathLike, **params: Any) -> None:
    """Write the Ocat details (`get_ocat_web` with ``params``) to the HDF5 file ``datafile``
    (overwritten), as `get_ocat_local` reads it; strings are stored UTF-8 encoded."""
    dat = get_ocat_web(**params)
    for name, col in dat.columns.items():
        if col.info.dtype.kind == "U":
            dat[name] = _keep_mask(col, np.char.encode(_filled(col), "utf-8"))
    dat.write(
        datafile, path="data", serialize_meta=True, overwrite=True, format="hdf5", compression=True
    )


def get_ocat_local(
    obsid: int | None = None,
    *,
    target_name: str | None = None,
    resolve_name: bool = False,
    ra: float | None = None,
    dec: float | None = None,
    radius: float = 1.0,
    return_type: str = "auto",
    datafile: str | os.PathLike | None = None,
    where: str | None = None,
    **params: Any,
) -> Table | dict[str, Any]:
    """The Ocat details from a local HDF5 copy (written by `update_ocat_local`).

    Parameters
    ----------
    obsid : int, optional
        Observation id.
    target_name, resolve_name, ra, dec, radius, return_type
        As in `get_ocat_web`.
    datafile : path-like, optional
        The HDF5 file (default ``<archive root>/ocat_target_table.h5``, `ocat_table_path`).
    where : str, optional
        A PyTables condition on the columns (``"seq_num=='700958'"``).
    **params
        ``<column>=<value>``: rows whose column equals the value.

    Returns
    -------
    astropy.table.Table or dict
    """
    datafile = ocat_table_path() if datafile is None else Path(datafile)
    parts = [] if where is None else [where]
    if obsid is not None:
        parts.append(f"obsid=={obsid}")
    if target_name is not None and resolve_name:
        ra, dec = _resolve(target_name)
    if ra is not None and dec is not None:
        d2r = np.pi / 180.0
        # great-circle distance to the cone centre, in radians
        parts.append(
            f"arccos(sin({ra * d2r})*sin(ra*{d2r}) + "
            f"cos({ra * d2r})*cos(ra*{d2r})*cos({dec * d2r}-dec*{d2r})) < {radius / 60 * d2r}"
        )
    parts += [f"{name}=={value!r}" for name, value in params.items()]
    dat = _read_where(datafile, parts) if parts else Table.read(datafile, path="data")
    for name, col in dat.columns.items():
        if col.info.dtype.kind == "S":
            text = col.astype("U") if len(dat) == 0 else np.char.decode(_filled(col), "utf-8")
            dat[name] = _keep_mask(col, text)
    if len(dat) > 0 and target_name is not None and not resolve_name:
        wanted = target_name.lower().replace(" ", "")
        names = np.char.lower(np.char.replace(np.asarray(dat["target_name"], dtype=str), " ", ""))
        dat = dat[np.char.find(names, wanted) != -1]
    _set_units(dat)
    return _table_or_dict(return_type, obsid, dat)


def _filled(col: Any) -> np.ndarray:
    """A column's values as a plain array (masked entries empty)."""
    return np.asarray(col.filled("") if hasattr(col, "mask") else col)


def _keep_mask(col: Any, values: np.ndarray) -> Any:
    """``values`` (a recoded ``col``) with ``col``'s mask, if it has one."""
    return MaskedColumn(values, mask=col.mask) if hasattr(col, "mask") else values


def _read_where(datafile: Path, parts: list[str]) -> Table:
    """The rows of the HDF5 table meeting every condition (PyTables ``read_where``), its
    ``<name>.mask`` columns made masks again."""
    import tables

    where = "&".join(f"({part})" for part in parts)
    with tables.open_file(datafile) as h5, warnings.catch_warnings():
        # column names such as 'ra.mask' cannot be attributes: PyTables warns of each
        warnings.simplefilter("ignore", category=tables.NaturalNameWarning)
        dat = Table(h5.root.data.read_where(where))
    for masked in [n for n in dat.colnames if n.endswith(".mask")]:
        name = masked[: -len(".mask")]
        dat[name] = MaskedColumn(dat[name], mask=dat[masked], dtype=dat[name].dtype)
        dat.remove_column(masked)
    return dat
