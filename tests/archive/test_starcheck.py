"""mica.starcheck reads a starcheck.db3 in the original's schema, read-only, as the original did.

The database is built here with the original's schema (`STARCHECK_SQL`) and rows shaped as
its parser wrote them: loads FEB1317A and FEB2017A (obsid 19990 planned in the first,
rescheduled into the second), the APR2318 revisions A, B and C (obsid 21082 in A and B only:
C ran), a dark-current replica without a star catalog (49961) and engineering requests with
monitor windows.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from astropy.table import Table

import mica.starcheck
from mica import starcheck
from mica.errors import MissingArchiveError, MissingDataError
from mica.starcheck.starcheck import STARCHECK_SQL, load_name_to_mp_dir

LOADS = {
    1: "/2017/FEB1317/oflsa/",
    2: "/2017/FEB2017/oflsa/",
    3: "/2017/JUL0317/oflsb/",
    4: "/2018/APR2318/oflsa/",
    5: "/2018/APR2318/oflsb/",
    6: "/2018/APR2318/oflsc/",
    7: "/2009/JAN0509/oflsa/",
}

# (sc_id, obsid, obs_idx, mp_starcat_time, ra, dec, roll, dither (state, y amp, y period,
# z amp, z period) or None)
OBS = [
    (
        1,
        19372,
        1,
        "2017:044:10:02:11.311",
        209.04218,
        47.227524,
        357.020117,
        ("ON", 8.0, 1000.0, 8.0, 707.1),
    ),
    (1, 2000, 2, "2017:045:01:15:40.000", 83.8221, -5.3911, 72.5, ("OFF", 0.0, None, 0.0, None)),
    (1, 19990, 3, "2017:050:20:01:00.000", 10.0, 20.0, 30.0, ("ON", 16.0, 1000.0, 16.0, 707.1)),
    (2, 51500, 1, "2017:050:12:30:00.000", 150.0, 2.0, 100.0, None),
    (2, 19990, 2, "2017:051:03:10:00.000", 10.0, 20.0, 31.5, ("ON", 16.0, 1000.0, 16.0, 707.1)),
    (3, 49961, 1, None, None, None, None, None),
    (4, 21082, 1, "2018:113:10:00:00.000", 55.0, -10.0, 200.0, ("ON", 8.0, 1000.0, 8.0, 707.1)),
    (5, 21082, 1, "2018:113:10:00:00.000", 55.0, -10.0, 200.0, ("ON", 8.0, 1000.0, 8.0, 707.1)),
    (6, 20950, 1, "2018:113:10:05:00.000", 56.0, -11.0, 201.0, ("ON", 8.0, 1000.0, 8.0, 707.1)),
    (7, 55123, 1, "2009:005:04:00:00.000", 1.0, 2.0, 3.0, None),
    (7, 55124, 2, "2009:005:09:00:00.000", 4.0, 5.0, 6.0, None),
]

# IDX -> (slot, id, type) of obsid 19372's catalog (its flight catalog's ids)
CAT_19372 = {
    1: (0, 1, "FID"), 2: (1, 5, "FID"), 3: (2, 6, "FID"),
    4: (3, 454035528, "BOT"), 5: (4, 454035856, "BOT"), 6: (5, 454428648, "BOT"),
    7: (6, 454432416, "BOT"), 8: (7, 454433448, "BOT"), 9: (0, 454036528, "ACQ"),
    10: (1, 454039632, "ACQ"), 11: (2, 454036472, "ACQ"), 12: (3, 454038056, "GUI"),
}  # fmt: skip


def _catalog_rows(sc_id: int, obsid: int, obs_idx: int, time: str) -> list[tuple]:
    rows = []
    entries = (
        CAT_19372
        if obsid == 19372
        else {i: (i % 8, 100000 + obsid * 10 + i, "BOT" if i > 3 else "FID") for i in range(1, 12)}
    )
    if obsid in (55123, 55124):  # an ER catalog with a monitor window in slot 7
        entries = {1: (0, 600001, "BOT"), 2: (7, None, "MON")}
    for idx, (slot, star_id, kind) in entries.items():
        mag = 7.0 if kind == "FID" else 9.0 + idx * 0.1
        rows.append(
            (sc_id, obsid, obs_idx, time, idx, slot, star_id, None, kind,
             "8x8", 0.95, mag - 1.5, mag, mag + 1.5, -1000 + 150 * idx, 500 - 90 * idx,
             20, 1, 25, "", "")
        )  # fmt: skip
    return rows


def build_starcheck_db(path: Path, schema: str = STARCHECK_SQL) -> Path:
    """A starcheck.db3 in the original's schema holding the loads above."""
    newest = "mtime" in schema
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    for sc_id, folder in LOADS.items():
        if newest:
            conn.execute("insert into starcheck_id values (?, ?, ?)", (sc_id, folder, 1e9 + sc_id))
        else:
            conn.execute("insert into starcheck_id values (?, ?)", (sc_id, folder))
    for sc_id, obsid, obs_idx, time, ra, dec, roll, dither in OBS:
        state, y_amp, y_per, z_amp, z_per = dither or (None, None, None, None, None)
        conn.execute(
            "insert into starcheck_obs (sc_id, obsid, obs_idx, point_ra, point_dec, point_roll,"
            " target_id, sci_instr, sim_z_offset_steps, sim_z_offset_mm, grating,"
            " dither_state, dither_y_amp, dither_y_period, dither_z_amp, dither_z_period,"
            " mp_starcat_time, mp_starcat_vcdu_cnt) values"
            " (?, ?, ?, ?, ?, ?, ?, 'ACIS-S', -1180, -2.967, 'NONE', ?, ?, ?, ?, ?, ?, ?)",
            (sc_id, obsid, obs_idx, ra, dec, roll, f"target {obsid}", state, y_amp, y_per,
             z_amp, z_per, time, 1234567),
        )  # fmt: skip
        if time is None:
            continue
        conn.execute(
            "insert into starcheck_manvr (sc_id, obsid, obs_idx, instance, duration_sec,"
            " angle_deg, slew_err_arcsec, target_Q1, target_Q2, target_Q3, target_Q4,"
            " mp_targquat_time, mp_targquat_vcdu_cnt) values"
            " (?, ?, ?, 0, 1560.0, 95.3, 41.0, 0.1, -0.2, 0.3, 0.927362, ?, 1234500)",
            (sc_id, obsid, obs_idx, time),
        )
        cols = 21 if newest else 20
        for row in _catalog_rows(sc_id, obsid, obs_idx, time):
            row = row if newest else row[:10] + row[11:]  # no p_acq before
            conn.execute(f"insert into starcheck_catalog values ({', '.join('?' * cols)})", row)
        warning = (sc_id, obsid, obs_idx, ">> WARNING: Guide star 454432416 near hot pixel", 7)
        if newest:
            conn.execute("insert into starcheck_warnings values (?, ?, ?, ?, ?, 'orange')", warning)
            conn.execute("insert into starcheck_pred_temp values (?, ?, ?)", (sc_id, obsid, -10.8))
        else:
            conn.execute("insert into starcheck_warnings values (?, ?, ?, ?, ?)", warning)
    conn.commit()
    conn.close()
    return path


def _old_schema() -> str:
    """The original's first schema: no mtime, p_acq, warning_type or pred_temp table."""
    schema = STARCHECK_SQL.replace(", mtime float not null", "")
    schema = schema.replace(" p_acq float,", "").replace(", warning_type varchar(15)", "")
    start = schema.index("create table starcheck_pred_temp")
    schema = schema[:start] + schema[schema.index(";", start) + 1 :]
    return schema.replace("create index mtime_idx on starcheck_id(mtime);", "")


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def starcheck_root(tmp_path_factory) -> Path:
    archive = tmp_path_factory.mktemp("starcheck_archive")
    folder = archive / "starcheck"
    folder.mkdir()
    build_starcheck_db(folder / "starcheck.db3")
    return folder


def test_public_names():
    for name in ("get_starcheck_catalog", "get_starcheck_catalog_at_date", "get_mp_dir",
                 "get_monitor_windows", "get_dither", "get_att", "get_starcat"):  # fmt: skip
        assert callable(getattr(mica.starcheck, name))
    assert load_name_to_mp_dir("DEC2506C") == "/2006/DEC2506/oflsc/"
    assert load_name_to_mp_dir("JUL2699A") == "/1999/JUL2699/oflsa/"


def test_catalog_of_obsid(starcheck_root):
    before = _snapshot(starcheck_root)
    sc = starcheck.get_starcheck_catalog(19372, data_root=starcheck_root)
    assert sc["mp_dir"] == "/2017/FEB1317/oflsa/" and sc["status"] == "ran"
    assert isinstance(sc["cat"], Table) and len(sc["cat"]) == len(CAT_19372)
    assert {row["idx"]: row["id"] for row in sc["cat"]} == {k: v[1] for k, v in CAT_19372.items()}
    assert sc["obs"]["point_ra"] == 209.04218 and sc["obs"]["dither_state"] == "ON"
    assert isinstance(sc["manvr"], Table) and sc["manvr"]["target_Q4"][0] == 0.927362
    assert "near hot pixel" in sc["warnings"]["warning"][0] and sc["pred_temp"] == -10.8
    assert _snapshot(starcheck_root) == before  # nothing written, no journal left


def test_rescheduled_obsid_takes_the_load_that_ran(starcheck_root):
    # 19990 was planned late in FEB1317A, whose tail FEB2017A replaced: it ran from FEB2017A
    directory, status, date = starcheck.get_mp_dir(19990, data_root=starcheck_root)
    assert (directory, status, date) == ("/2017/FEB2017/oflsa/", "ran", "2017:051:03:10:00.000")
    sc = starcheck.get_starcheck_catalog(19990, data_root=starcheck_root)
    assert sc["obs"]["point_roll"] == 31.5
    planned = starcheck.get_starcheck_catalog(19990, "FEB1317A", data_root=starcheck_root)
    assert planned["mp_dir"] == "/2017/FEB1317/oflsa/" and planned["obs"]["point_roll"] == 30.0
    assert planned["status"] is None


def test_revision_that_did_not_run(starcheck_root):
    # 21082 is in APR2318A and B but not C, which ran: it never happened
    assert starcheck.get_mp_dir(21082, data_root=starcheck_root) == (None, None, None)
    assert starcheck.get_starcheck_catalog(21082, data_root=starcheck_root) is None
    assert starcheck.get_starcat(21082, data_root=starcheck_root) is None
    for mp_dir in ("/2018/APR2318/oflsa/", "APR2318A"):
        sc = starcheck.get_starcheck_catalog(21082, mp_dir, data_root=starcheck_root)
        assert len(sc["cat"]) == 11 and sc["mp_dir"] == "/2018/APR2318/oflsa/"
    assert starcheck.get_starcheck_catalog(21082, "APR2318Z", data_root=starcheck_root) is None
    assert starcheck.get_mp_dir(20950, data_root=starcheck_root)[0] == "/2018/APR2318/oflsc/"


def test_no_starcat_and_unknown(starcheck_root):
    assert starcheck.get_mp_dir(49961, data_root=starcheck_root) == (
        "/2017/JUL0317/oflsb/", "no starcat", None
    )  # fmt: skip
    assert starcheck.get_mp_dir(12345, data_root=starcheck_root) == (None, None, None)
    with pytest.raises(MissingDataError, match="12345"):
        starcheck.get_att(12345, data_root=starcheck_root)


def test_catalog_at_date(starcheck_root):
    sc = starcheck.get_starcheck_catalog_at_date("2017:044:12:00:00", data_root=starcheck_root)
    assert sc["obs"]["obsid"] == 19372 and sc["status"] == "ran"
    # FEB2017A took over at 2017:050:12:30, so FEB1317A's 19990 of 20:01 never applied
    sc = starcheck.get_starcheck_catalog_at_date("2017:050:21:00:00", data_root=starcheck_root)
    assert sc["obs"]["obsid"] == 51500 and sc["mp_dir"] == "/2017/FEB2017/oflsa/"
    sc = starcheck.get_starcheck_catalog_at_date("2018:113:10:06:00", data_root=starcheck_root)
    assert sc["mp_dir"] == "/2018/APR2318/oflsc/" and sc["obs"]["obsid"] == 20950
    # before APR2318C took over, the last catalog is a year old: the loads between are missing
    with pytest.raises(MissingDataError, match="more than 7 days older"):
        starcheck.get_starcheck_catalog_at_date("2018:113:10:01:00", data_root=starcheck_root)
    with pytest.raises(MissingDataError, match="could not find observation"):
        starcheck.get_starcheck_catalog_at_date("2008:001", data_root=starcheck_root)
    with pytest.raises(ValueError):  # the original's exception type
        starcheck.get_starcheck_catalog_at_date("2008:001", data_root=starcheck_root)


def test_dither_att_starcat(starcheck_root):
    assert starcheck.get_dither(19372, data_root=starcheck_root) == {
        "pitch_ampl": 8.0, "pitch_period": 707.1, "yaw_ampl": 8.0, "yaw_period": 1000.0
    }  # fmt: skip
    assert starcheck.get_dither(2000, data_root=starcheck_root) == {
        "pitch_ampl": 0.0, "pitch_period": -999.0, "yaw_ampl": 0.0, "yaw_period": -999.0
    }  # fmt: skip
    with pytest.raises(ValueError, match="Dither parameters not in starcheck database"):
        starcheck.get_dither(51500, data_root=starcheck_root)
    assert starcheck.get_att(19372, data_root=starcheck_root) == [209.04218, 47.227524, 357.020117]
    assert len(starcheck.get_starcat(19372, data_root=starcheck_root)) == 12


def test_monitor_windows(starcheck_root):
    mons = starcheck.get_monitor_windows("2009:002", "2009:007", data_root=starcheck_root)
    assert list(mons["obsid"]) == [55123, 55124] and set(mons["type"]) == {"MON"}
    assert mons.colnames == [
        "obsid", "mp_starcat_date", "type", "sz", "yang", "zang", "dir", "catalog", "status"
    ]  # fmt: skip
    assert list(mons["status"]) == ["ran", "ran"]
    config = {"starcheck_db": {"dbi": "sqlite", "server": str(starcheck_root / "starcheck.db3")}}
    assert len(starcheck.get_monitor_windows("2009:002", "2009:007", config=config)) == 2
    assert len(starcheck.get_monitor_windows("2010:001", "2010:002", config=config)) == 0


def test_database_handles(starcheck_root):
    path = starcheck_root / "starcheck.db3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        assert starcheck.get_starcheck_catalog(19372, starcheck_db=conn)["obs"]["obsid"] == 19372

        class Handle:  # a Ska.DBI.DBI handle keeps its connection as ``conn``
            pass

        handle = Handle()
        handle.conn = conn
        assert starcheck.get_mp_dir(19372, starcheck_db=handle)[0] == "/2017/FEB1317/oflsa/"
    assert starcheck.get_mp_dir(19372, starcheck_db=str(path))[1] == "ran"


def test_paths_follow_the_archive(starcheck_root, monkeypatch):
    monkeypatch.setenv("MICA_ARCHIVE", str(starcheck_root.parent))
    files = mica.starcheck.starcheck.FILES
    assert files["data_root"] == str(starcheck_root)
    server = mica.starcheck.starcheck.DEFAULT_CONFIG["starcheck_db"]["server"]
    assert server == str(starcheck_root / "starcheck.db3")
    assert starcheck.get_att(19372) == [209.04218, 47.227524, 357.020117]


def test_missing_database(tmp_path):
    with pytest.raises(MissingArchiveError, match="no starcheck database"):
        starcheck.get_starcheck_catalog(19372, data_root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # a reader creates nothing


def test_original_first_schema(tmp_path):
    build_starcheck_db(tmp_path / "starcheck.db3", _old_schema())
    sc = starcheck.get_starcheck_catalog(19372, data_root=tmp_path)
    assert len(sc["cat"]) == 12 and "p_acq" not in sc["cat"].colnames
    assert "pred_temp" not in sc
