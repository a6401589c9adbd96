"""Synthetic rows of an L0 archive's index: the mission's file counts, for measuring how the
index's queries scale (tests/engine/test_query_plans.py, benchmarks/bench_scale.py).

`add_index_rows` fills whole days with files back to back on each of the 8 slots, each
lasting 5 minutes to 1.8 hours (about 200 files a day, as the archive has: 25 years are 1.8
million files), the days spread evenly over a time range. Only the index gets the
rows: there are no files, no store chunks and no dirty marks, so readers and updates of
other times never meet them, while every query of the index runs over them.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from mica.products.aca_l0 import L0
from mica.sim.aca_l0 import l0_filename
from mica.time import year_doy

__all__ = ["add_index_rows"]

DAY = 86400.0
#: the shortest and longest synthetic file (s): L0 files break at every acquisition
SPAN = (300.0, 6600.0)
#: image size per slot: fid lights (6x6) in slots 0-2, guide stars (8x8) in the rest
SIZES = (6, 6, 6, 8, 8, 8, 8, 8)


def _day_rows(day0: float, rng: np.random.Generator) -> list[tuple]:
    """One day's rows, every slot's files back to back (the day's last one cut at its end)."""
    year, doy = year_doy(day0 + DAY / 2)
    out = []
    for slot, size in enumerate(SIZES):
        spans = rng.uniform(*SPAN, size=int(DAY / SPAN[0]))
        stops = day0 + rng.uniform(0, 60) + np.cumsum(spans)
        starts = np.concatenate([[stops[0] - spans[0]], stops[:-1]])
        keep = starts < day0 + DAY - SPAN[0]
        for tstart, tstop in zip(starts[keep], np.minimum(stops[keep], day0 + DAY)):
            filetime = int(tstart)
            rows = int((tstop - tstart) / 4.1)
            out.append(
                (l0_filename(filetime, 1, slot), filetime, year, doy, float(tstart),
                 float(tstop), 0, 0, 0, 0, "synthetic", "", "", 1, "", rows, size, slot)
            )  # fmt: skip
    return out


def add_index_rows(
    conn: sqlite3.Connection,
    count: int,
    tstart: float,
    tstop: float,
    skip: tuple[float, float] | None = None,
    seed: int = 28,
) -> int:
    """Insert at least ``count`` synthetic file rows into an L0 index, in whole days spread
    over [tstart, tstop), none in ``skip`` (a range kept for real files).

    Parameters
    ----------
    conn : sqlite3.Connection
        An open L0 index (its ``archfiles`` table).
    count : int
        Rows wanted (the last day is filled whole).
    tstart, tstop : float
        The range, CXC seconds.
    skip : (float, float), optional
        A range of days not to fill.
    seed : int
        The random generator's seed (the same rows each time).

    Returns
    -------
    int
        The rows inserted.
    """
    rng = np.random.default_rng(seed)
    days = np.arange(tstart // DAY, tstop // DAY) * DAY
    if skip is not None:
        days = days[(days + DAY <= skip[0]) | (days >= skip[1])]
    per_day = len(SIZES) * DAY / np.mean(SPAN)
    wanted = min(len(days), int(np.ceil(count / per_day * 1.05)))
    picked = days[np.unique(np.linspace(0, len(days) - 1, wanted).astype(int))]
    columns = [c.name for c in L0.index_columns]
    sql = f"INSERT INTO archfiles ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    added = 0
    with conn:
        for day0 in picked:
            rows = _day_rows(float(day0), rng)
            conn.executemany(sql, rows)
            added += len(rows)
            if added >= count:
                break
    return added
