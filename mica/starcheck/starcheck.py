"""The starcheck database the original mica built (``<archive>/starcheck/starcheck.db3``), read.

The original parsed the mission-planning ``starcheck.txt`` reports into SQLite tables
(`STARCHECK_SQL`: one ``starcheck_id`` row per products folder such as
``/2017/FEB1317/oflsa/``, and per observation of it ``starcheck_obs``, ``starcheck_manvr``,
``starcheck_catalog``, ``starcheck_warnings``, ``starcheck_pred_temp``). These readers take
the original's names, parameters and return types over such a database, opened read-only.

Which products folder ran is answered from the database alone (the original asked kadi's
commanded observations): of the revisions of a week (``oflsa``, ``oflsb``, ...) the last
is the one that ran, and it is in force from its first star-catalog time
(``mp_starcat_time``) until a later load's first one (a replan takes over from there). An
observation ran from the load in force at its catalog time; a catalog applies from its
``mp_starcat_time`` until the next one of the load in force. So a last revision that was never
approved is taken as the one that ran, and the few minutes of maneuver before a catalog's
time get the previous catalog (the original used the end of the previous dwell).

Examples
--------
>>> from mica.starcheck.starcheck import load_name_to_mp_dir
>>> load_name_to_mp_dir("FEB1317A")
'/2017/FEB1317/oflsa/'
"""

from __future__ import annotations

import bisect
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from mica.common import computed_attributes
from mica.config import archive_root
from mica.engine.index import POINT_AT_ARCHIVE, connect_readonly
from mica.errors import InvalidArgumentError, MissingArchiveError, MissingDataError
from mica.time import CxoTimeLike, to_date, to_secs

__all__ = [
    "STARCHECK_SQL",
    "get_att",
    "get_dither",
    "get_monitor_windows",
    "get_mp_dir",
    "get_mp_dir_from_starcheck_db",
    "get_starcat",
    "get_starcheck_catalog",
    "get_starcheck_catalog_at_date",
    "get_starcheck_db_obsid",
    "load_name_to_mp_dir",
]

#: The folder under the archive root and the database file in it (the original's names).
STARCHECK_FOLDER = "starcheck"
STARCHECK_DB = "starcheck.db3"

#: The original's schema of ``starcheck.db3`` (its ``starcheck.sql``, newest version): tables
#: and columns as these readers expect them. Older databases lack ``starcheck_id.mtime``,
#: ``starcheck_catalog.p_acq``, ``starcheck_warnings.warning_type`` and
#: ``starcheck_pred_temp``; the readers take them as they are.
STARCHECK_SQL = """
create table starcheck_id (id int not null, dir varchar(20) not null, mtime float not null,
    primary key (id));
create table starcheck_obs (sc_id int not null, obsid int not null, obs_idx int not null,
    point_ra float, point_dec float, point_roll float, target_id varchar(30),
    sci_instr varchar(10), sim_z_offset_steps int, sim_z_offset_mm float,
    grating varchar(10), dither_state varchar(4), dither_y_amp float,
    dither_y_period float, dither_z_amp float, dither_z_period float,
    mp_starcat_time varchar(25), mp_starcat_vcdu_cnt int,
    constraint fk_so_id foreign key (sc_id) references starcheck_id (id));
create table starcheck_manvr (sc_id int not null, obsid int not null, obs_idx int not null,
    instance int default 0 not null, duration_sec float, angle_deg float,
    slew_err_arcsec float, target_Q1 float, target_Q2 float, target_Q3 float,
    target_Q4 float, mp_targquat_time varchar(25), mp_targquat_vcdu_cnt int,
    constraint fk_sm_id foreign key (sc_id) references starcheck_id (id));
create table starcheck_catalog (sc_id int not null, obsid int not null,
    obs_idx int not null, mp_starcat_time varchar(25), idx int not null, slot int not null,
    id int, idnote varchar(4), type varchar(4) not null, sz varchar(10), p_acq float,
    minmag float, mag float, maxmag float, yang int, zang int, dim int, res int,
    halfw int, pass varchar(10), notes varchar(10),
    constraint fk_sc_id foreign key (sc_id) references starcheck_id (id));
create table starcheck_warnings (sc_id int not null, obsid int not null,
    obs_idx int not null, warning varchar(100) not null, idx int, warning_type varchar(15),
    constraint fk_sw_id foreign key (sc_id) references starcheck_id (id));
create table starcheck_processing (sc_id int not null, mp_path varchar(30) not null,
    type varchar(30) not null, value varchar(100), section_line_num int,
    last_ap_date datetime,
    constraint fk_sp_id foreign key (sc_id) references starcheck_id (id));
create table starcheck_pred_temp (sc_id int not null, obsid int not null,
    pred_ccd_temp float,
    constraint fk_spt_id foreign key (sc_id) references starcheck_id (id));
create index mtime_idx on starcheck_id(mtime);
create index cat_id_idx on starcheck_catalog(sc_id);
create index cat_time_idx on starcheck_catalog(mp_starcat_time);
create index id_dir_idx on starcheck_id(dir);
create index manvr_id_idx on starcheck_manvr(sc_id);
create index obs_obs_idx on starcheck_obs(obsid);
create index obs_time_idx on starcheck_obs(mp_starcat_time);
"""

# A load name such as FEB1317A: month, day, two-digit year, revision letter.
_LOAD_NAME = re.compile(r"^([A-Z]{3})(\d{2})(\d{2})([A-Z])$")

# A catalog older than this at a date is not taken as in force then: the loads between are
# missing from the database (the original looked for observations within 7 days too).
_LONGEST_GAP = 7 * 86400.0

# Each load's first star-catalog time (the time it takes over).
_LOAD_STARTS = """
    select starcheck_id.id as sc_id, starcheck_id.dir as dir,
           min(starcheck_obs.mp_starcat_time) as start
    from starcheck_id join starcheck_obs on starcheck_obs.sc_id = starcheck_id.id
    where starcheck_obs.mp_starcat_time is not null
    group by starcheck_id.id
"""


def _starcheck_root(data_root: str | Path | None) -> Path:
    return Path(data_root) if data_root is not None else archive_root() / STARCHECK_FOLDER


def _files() -> dict[str, str]:
    root = archive_root() / STARCHECK_FOLDER
    return {
        "data_root": str(root),
        "touch_file": str(root / "starcheck_parser.touch"),
        "sql_def": "starcheck.sql",
    }


def _default_config() -> dict[str, Any]:
    server = archive_root() / STARCHECK_FOLDER / STARCHECK_DB
    return {
        "starcheck_db": {"dbi": "sqlite", "server": str(server)},
        "mp_top_level": "/data/mpcrit1/mplogs",
    }


# FILES and DEFAULT_CONFIG follow MICA_ARCHIVE at every access (the original bound them at
# import).
__getattr__ = computed_attributes(__name__, {"FILES": _files, "DEFAULT_CONFIG": _default_config})


@contextmanager
def _database(starcheck_db: Any = None, data_root: str | Path | None = None) -> Iterator[Any]:
    """A read-only connection: ``starcheck_db`` when it is one, else the file it names or
    ``<data_root>/starcheck.db3``.

    ``starcheck_db`` may be an open `sqlite3.Connection` (left open), an object holding one
    as ``conn`` (a ``Ska.DBI.DBI`` handle), or the path of a database file.
    """
    if isinstance(starcheck_db, sqlite3.Connection):
        yield starcheck_db
        return
    if isinstance(getattr(starcheck_db, "conn", None), sqlite3.Connection):
        yield starcheck_db.conn
        return
    if starcheck_db is None:
        path = _starcheck_root(data_root) / STARCHECK_DB
    elif isinstance(starcheck_db, (str, Path)):
        path = Path(starcheck_db)
    else:
        raise InvalidArgumentError(
            f"starcheck_db must be an sqlite3 connection or a database path, not "
            f"{type(starcheck_db).__name__}"
        )
    if not path.is_file():
        raise MissingArchiveError(
            f"no starcheck database {path}: this mica reads the starcheck.db3 the original "
            f"mica built from the mission-planning products (it does not make one); copy it "
            f"there or {POINT_AT_ARCHIVE}",
            STARCHECK_FOLDER,
            path.parent,
        )
    with closing(connect_readonly(path)) as conn:
        yield conn


def _fetch(conn: Any, query: str, params: tuple = ()) -> list[dict[str, Any]]:
    cursor = conn.execute(query, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _table(rows: list[dict[str, Any]]) -> Table | list:
    """Rows as an astropy Table, or ``[]`` for none (as the original returned)."""
    if not rows:
        return []
    names = list(rows[0])
    return Table(rows=[[row[n] for n in names] for row in rows], names=names)


def _status(date: str, now: str | None = None) -> str:
    """'ran' for a catalog time before now, 'approved' after (the original's words)."""
    return "ran" if date < (now or to_date(None)) else "approved"


def load_name_to_mp_dir(load_name: str) -> str:
    """The products folder of a load name: ``DEC2506C`` -> ``/2006/DEC2506/oflsc/``.

    Parameters
    ----------
    load_name : str
        Month, day, two-digit year and revision letter (``FEB1317A``).

    Returns
    -------
    str
        The folder as the database's ``starcheck_id.dir`` holds it.

    Raises
    ------
    InvalidArgumentError
        For a string that is not a load name.
    """
    match = _LOAD_NAME.match(str(load_name))
    if match is None:
        raise InvalidArgumentError(f"{load_name!r} is not a load name such as 'FEB1317A'")
    month, day, yy, rev = match.groups()
    year = 1900 + int(yy) if int(yy) >= 90 else 2000 + int(yy)  # Chandra's loads start 1999
    return f"/{year}/{month}{day}{yy}/ofls{rev.lower()}/"


class _Loads:
    """The loads that ran, each from its first catalog time: of the revisions of a week
    (``/2017/FEB1317/oflsa/``, ``oflsb/``, ...) the last, as only one was approved."""

    def __init__(self, conn: Any):
        last_revision: dict[str, dict[str, Any]] = {}
        for load in _fetch(conn, _LOAD_STARTS):
            week = load["dir"].rstrip("/").rsplit("/", 1)[0]
            if week not in last_revision or load["dir"] > last_revision[week]["dir"]:
                last_revision[week] = load
        self.loads = sorted(last_revision.values(), key=lambda x: (x["start"], x["sc_id"]))
        self.starts = [load["start"] for load in self.loads]

    def in_force(self, date: str) -> dict[str, Any] | None:
        """The load commanding at ``date``: the latest to start at or before it."""
        i = bisect.bisect_right(self.starts, date)
        return self.loads[i - 1] if i else None


def get_mp_dir(
    obsid: int, starcheck_db: Any = None, data_root: str | Path | None = None
) -> tuple[str | None, str | None, str | None]:
    """The products folder whose catalog of ``obsid`` ran, the last one when it ran twice.

    Parameters
    ----------
    obsid : int
        Observation id.
    starcheck_db : sqlite3.Connection or path, optional
        The starcheck database (default ``<data_root>/starcheck.db3``).
    data_root : str or Path, optional
        The ``starcheck`` folder (default ``<archive>/starcheck``).

    Returns
    -------
    tuple
        ``(directory, status, date)``: the folder (``'/2017/FEB1317/oflsa/'``), ``'ran'``
        (catalog time before now), ``'approved'`` (after) or ``'no starcat'`` (the
        observation has no star catalog: date None); ``(None, None, None)`` when no load in
        force holds the obsid.

    Raises
    ------
    MissingArchiveError
        When there is no starcheck database.
    """
    with _database(starcheck_db, data_root) as conn:
        rows = _fetch(
            conn,
            "select starcheck_obs.mp_starcat_time as date, starcheck_id.dir as dir, "
            "starcheck_id.id as sc_id from starcheck_obs join starcheck_id "
            "on starcheck_id.id = starcheck_obs.sc_id where starcheck_obs.obsid = ? "
            "order by starcheck_obs.mp_starcat_time, starcheck_id.id",
            (int(obsid),),
        )
        loads = _Loads(conn) if rows else None
        for row in reversed(rows):
            if row["date"] is None or loads is None:
                continue
            in_force = loads.in_force(row["date"])
            if in_force is not None and in_force["sc_id"] == row["sc_id"]:
                return row["dir"], _status(row["date"]), row["date"]
    if rows and all(row["date"] is None for row in rows):
        return rows[-1]["dir"], "no starcat", None
    return None, None, None


#: The original's fallback for obsids kadi did not know; here every lookup reads the database.
get_mp_dir_from_starcheck_db = get_mp_dir


def get_starcheck_db_obsid(
    mp_starcat_time: str, mp_dir: str, starcheck_db: Any = None, data_root: str | Path | None = None
) -> int:
    """The obsid the database files under a catalog time and products folder.

    Parameters
    ----------
    mp_starcat_time : str
        The catalog's ``MP_STARCAT`` date (``YYYY:DDD:hh:mm:ss.sss``).
    mp_dir : str
        Products folder (``/2006/DEC2506/oflsc/``).
    starcheck_db : sqlite3.Connection or path, optional
        The starcheck database.
    data_root : str or Path, optional
        The ``starcheck`` folder.

    Returns
    -------
    int
        The obsid.

    Raises
    ------
    MissingDataError
        When no observation has that catalog time in that folder (a ``ValueError``, as the
        original raised).
    """
    with _database(starcheck_db, data_root) as conn:
        rows = _fetch(
            conn,
            "select starcheck_obs.obsid from starcheck_obs join starcheck_id "
            "on starcheck_id.id = starcheck_obs.sc_id "
            "where starcheck_id.dir = ? and starcheck_obs.mp_starcat_time = ?",
            (mp_dir, mp_starcat_time),
        )
    if not rows:
        raise MissingDataError(f"no starcheck entry for {mp_starcat_time=} and {mp_dir=}")
    return int(rows[0]["obsid"])


def get_starcheck_catalog(
    obsid: int,
    mp_dir: str | None = None,
    starcheck_db: Any = None,
    data_root: str | Path | None = None,
) -> dict[str, Any] | None:
    """The starcheck content of an observation: catalog, maneuvers, warnings, pointing.

    Parameters
    ----------
    obsid : int
        Observation id.
    mp_dir : str, optional
        A products folder (``'/2017/FEB1317/oflsa/'``) or load name (``'FEB1317A'``); default
        the one that ran (`get_mp_dir`).
    starcheck_db : sqlite3.Connection or path, optional
        The starcheck database (default ``<data_root>/starcheck.db3``).
    data_root : str or Path, optional
        The ``starcheck`` folder (default ``<archive>/starcheck``).

    Returns
    -------
    dict or None
        ``mp_dir``; ``status`` (`get_mp_dir`'s, None when ``mp_dir`` was given); ``obs``
        (dict of the ``starcheck_obs`` row: pointing RA/Dec/roll in deg, dither amplitudes
        arcsec and periods s, ``mp_starcat_time``; None when the folder does not hold the
        obsid); ``cat``, ``manvr``, ``warnings`` (astropy Tables of the rows, ``[]`` for
        none: yang/zang arcsec, mags, halfw arcsec; maneuver target quaternions, angle deg,
        duration s); ``pred_temp`` (predicted CCD temperature, degC) when the database holds
        one. None when no folder ran the obsid or the folder is not in the database.

    Raises
    ------
    MissingArchiveError
        When there is no starcheck database.
    """
    with _database(starcheck_db, data_root) as conn:
        status = None
        if mp_dir is None:
            mp_dir, status, _ = get_mp_dir(obsid, conn)
            if mp_dir is None:
                return None
        if _LOAD_NAME.match(mp_dir):
            mp_dir = load_name_to_mp_dir(mp_dir)
        ids = _fetch(conn, "select id from starcheck_id where dir = ?", (mp_dir,))
        if not ids:
            return None
        key = (int(obsid), ids[0]["id"])
        obs = _fetch(conn, "select * from starcheck_obs where obsid = ? and sc_id = ?", key)
        out: dict[str, Any] = {"mp_dir": mp_dir, "status": status, "obs": obs[0] if obs else None}
        for part in ("manvr", "catalog", "warnings"):
            query = f"select * from starcheck_{part} where obsid = ? and sc_id = ?"
            out[part] = _table(_fetch(conn, query, key))
        out["cat"] = out.pop("catalog")
        has_temps = _fetch(
            conn, "select name from sqlite_master where name = 'starcheck_pred_temp'"
        )
        if has_temps:
            temps = _fetch(
                conn,
                "select pred_ccd_temp from starcheck_pred_temp where obsid = ? and sc_id = ?",
                key,
            )
            if temps:
                out["pred_temp"] = temps[0]["pred_ccd_temp"]
    return out


def get_starcheck_catalog_at_date(
    date: CxoTimeLike, starcheck_db: Any = None, data_root: str | Path | None = None
) -> dict[str, Any]:
    """The starcheck content of the catalog in force at ``date`` (`get_starcheck_catalog`).

    The catalog is the last one commanded at or before ``date`` by the load in force then
    (the module docstring says how that load is found), at most 7 days before it.

    Parameters
    ----------
    date : CxoTimeLike
        The time.
    starcheck_db : sqlite3.Connection or path, optional
        The starcheck database.
    data_root : str or Path, optional
        The ``starcheck`` folder.

    Returns
    -------
    dict
        As `get_starcheck_catalog`, ``status`` ``'ran'`` (``date`` before now) or
        ``'approved'``.

    Raises
    ------
    MissingDataError
        When no load of the database commands at ``date``, or its last catalog is more than
        7 days older (a ``ValueError``, as the original's "could not find observation").
    MissingArchiveError
        When there is no starcheck database.
    """
    when = to_date(date)
    with _database(starcheck_db, data_root) as conn:
        load = _Loads(conn).in_force(when)
        if load is None:
            raise MissingDataError(
                f"could not find observation at {when}: the starcheck database has no load "
                "commanding then"
            )
        last = _fetch(
            conn,
            "select obsid, mp_starcat_time from starcheck_obs where sc_id = ? and "
            "mp_starcat_time <= ? order by mp_starcat_time desc limit 1",
            (load["sc_id"], when),
        )
        if to_secs(when) - to_secs(last[0]["mp_starcat_time"]) > _LONGEST_GAP:
            raise MissingDataError(
                f"could not find observation at {when}: the starcheck database's last "
                f"catalog before it ({last[0]['mp_starcat_time']}, {load['dir']}) is more "
                "than 7 days older (the loads between are missing)"
            )
        out = get_starcheck_catalog(last[0]["obsid"], mp_dir=load["dir"], starcheck_db=conn)
    assert out is not None  # the folder and obsid were just read from the database
    out["status"] = _status(when)
    return out


def get_starcat(obsid: int, mp_dir: str | None = None, data_root: str | Path | None = None) -> Any:
    """The planned star catalog of an obsid (``get_starcheck_catalog(...)['cat']``).

    Returns
    -------
    astropy.table.Table or None
        None when the database holds no catalog of the obsid (a missing database still
        raises `MissingArchiveError`: the original returned None for that too).
    """
    catalog = get_starcheck_catalog(obsid, mp_dir, data_root=data_root)
    return None if catalog is None else catalog["cat"]


def _obs(obsid: int, mp_dir: str | None, data_root: str | Path | None) -> dict[str, Any]:
    catalog = get_starcheck_catalog(obsid, mp_dir, data_root=data_root)
    if catalog is None or catalog["obs"] is None:
        raise MissingDataError(f"obsid {obsid} is not in the starcheck database")
    return catalog["obs"]


def get_dither(
    obsid: int, mp_dir: str | None = None, data_root: str | Path | None = None
) -> dict[str, float]:
    """The planned dither of an obsid.

    Returns
    -------
    dict
        ``yaw_ampl``, ``pitch_ampl`` (arcsec), ``yaw_period``, ``pitch_period`` (s; -999.0
        where the amplitude is 0: dither disabled).

    Raises
    ------
    MissingDataError
        When the obsid is not in the database, or it has no dither parameters (ERs, some
        early observations): a ``ValueError`` as the original raised.
    """
    obs = _obs(obsid, mp_dir, data_root)
    if obs["dither_state"] is None:
        raise MissingDataError(f"Dither parameters not in starcheck database for obsid {obsid}")
    return {
        "yaw_ampl": obs["dither_y_amp"],
        "pitch_ampl": obs["dither_z_amp"],
        "yaw_period": obs["dither_y_period"] if obs["dither_y_amp"] != 0 else -999.0,
        "pitch_period": obs["dither_z_period"] if obs["dither_z_amp"] != 0 else -999.0,
    }


def get_att(obsid: int, mp_dir: str | None = None, data_root: str | Path | None = None) -> list:
    """The planned attitude of an obsid: ``[RA, Dec, Roll]`` in degrees.

    Raises
    ------
    MissingDataError
        When the obsid is not in the database.
    """
    obs = _obs(obsid, mp_dir, data_root)
    return [obs["point_ra"], obs["point_dec"], obs["point_roll"]]


def get_monitor_windows(
    start: CxoTimeLike | None = None,
    stop: CxoTimeLike | None = None,
    min_obsid: int = 40000,
    config: dict[str, Any] | None = None,
    data_root: str | Path | None = None,
) -> Table:
    """Monitor windows (catalog entries of type MON) of the catalogs that ran or will run.

    Parameters
    ----------
    start, stop : CxoTimeLike, optional
        Catalog times to take (default 1999:001:12:00:00 to now).
    min_obsid : int
        Only obsids above this (default 40000: engineering requests).
    config : dict, optional
        ``{'starcheck_db': {'server': <database path>}}`` as the original took it.
    data_root : str or Path, optional
        The ``starcheck`` folder.

    Returns
    -------
    astropy.table.Table
        ``obsid``, ``mp_starcat_date``, ``type``, ``sz``, ``yang``, ``zang`` (arcsec),
        ``dir``, ``catalog`` (None, as the original's) and ``status`` (``'ran'`` or
        ``'approved'``), one row per window whose load was in force at its catalog time.
    """
    server = ((config or {}).get("starcheck_db") or {}).get("server")
    start_date = to_date(start if start is not None else "1999:001:12:00:00")
    stop_date = to_date(stop)
    names = ["obsid", "mp_starcat_date", "type", "sz", "yang", "zang", "dir"]
    with _database(server, data_root) as conn:
        rows = _fetch(
            conn,
            "select starcheck_catalog.obsid, starcheck_catalog.mp_starcat_time as "
            "mp_starcat_date, type, sz, yang, zang, dir, starcheck_catalog.sc_id as sc_id "
            "from starcheck_catalog join starcheck_id on starcheck_id.id = "
            "starcheck_catalog.sc_id where type = 'MON' and starcheck_catalog.obsid > ? "
            "and mp_starcat_date >= ? and mp_starcat_date <= ? order by mp_starcat_date",
            (int(min_obsid), start_date, stop_date),
        )
        loads = _Loads(conn)
        ran = []
        for row in rows:
            load = loads.in_force(row["mp_starcat_date"])
            if load is not None and load["sc_id"] == row["sc_id"]:
                ran.append(row)
    table = Table(
        rows=[[row[n] for n in names] for row in ran] or None,
        names=names,
        dtype=None if ran else [int, str, str, str, int, int, str],
    )
    table["catalog"] = np.full(len(table), None, dtype=object)
    now = to_date(None)
    table["status"] = [_status(row["mp_starcat_date"], now) for row in ran] or np.array([], str)
    return table
