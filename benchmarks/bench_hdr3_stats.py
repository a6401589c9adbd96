"""Header-3 statistics: a year of 5-minute and 25 years of daily ``ccd_temp`` from the store.

    python benchmarks/bench_hdr3_stats.py [--years 25] [--work DIR] [--reuse]

Builds two simulated L0 archives of slots 6 and 7 (``ccd_temp``'s words) in 8x8, one file per
slot and day (starting 3000 s into the day, so files cross day and period boundaries), through
the store's real chunk build path without writing FITS files (`mica.sim.hdr3_store`):

* a year (2013) at the full 4.1 s cadence;
* ``--years`` from 1999:204 at a thinned cadence: a pair of rows 4.1 s apart every 328 s (the
  first passes the gap test), one good sample per 5-minute bin; a daily read costs the same
  at any cadence (one row per day and chunk).

Then measures in a fresh process, as a user's session would be (the modules imported, nothing
read yet): the first read and the best of ten, in wall and CPU time (on a busy machine the CPU
time is what an idle one would take); the floor of a read from the periods' chunks, opening
every chunk of the range and reading the item's dataset with nothing else (daily bins come
from the mission table, one file: `mica.products.hdr3_mission`); and the same year's bins
computed from the samples (the store's sample tables), what a read without the statistics
would cost; beside
each read, the same read from a cheta-layout statistics store of the same bins
(`build_cheta_stats`: one PyTables table per statistic, cheta's fetch). Targets: a year of
5-minute ``ccd_temp`` within 30 ms, 25 years of daily within 30 ms (cold, wall and CPU),
each at most 0.75x the cheta layout's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from bench_archive import DAY, best_of, print_table

from mica.products.hdr3_stats import STATS_DT
from mica.time import to_secs

YEAR_START = "2013:001:00:00:00"
MISSION_START = "1999:204:00:00:00"
FILE_OFFSET = 3000.25  # a file starts this far into its day
THIN = 80  # the thinned archive keeps a pair of rows every 80 grid times (328 s)


def build(root: Path, start: str, days: int, thin: int) -> tuple[float, int]:
    """An archive of slots 6-7 over ``days`` from ``start`` (``thin`` > 1: thinned);
    returns (seconds, rows)."""
    from mica.sim.hdr3_store import Hdr3File, file_times, store_hdr3_files

    t0 = to_secs(start)
    tic = time.perf_counter()
    rows = 0
    step = 100  # days per batch: the chunks of a period are built once its files are in
    for first in range(0, days, step):
        files = []
        for day in range(first, min(first + step, days)):
            a = t0 + day * DAY + FILE_OFFSET
            times = file_times(a, a + DAY, every=thin, pair=thin > 1)
            files += [Hdr3File(6, times), Hdr3File(7, times)]
            rows += 2 * len(times)
        store_hdr3_files(root, files)
    return time.perf_counter() - tic, rows


def chunk_paths(root: Path, t0: float, t1: float) -> list[Path]:
    """The sample view's chunk files over [t0, t1]."""
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0

    with ArchiveIndex(L0, root) as index:
        rows = index.conn.execute(
            "SELECT path FROM store_chunks WHERE part LIKE 'hd3s/%' AND tstop >= ? AND tstart <= ?",
            (t0, t1),
        ).fetchall()
    return [root / r[0] for r in rows]


#: cheta's statistics columns (its names) -> the `MSID` attribute giving each one's values
CHETA_COLUMNS = {
    "index": "indexes",
    "n": "samples",
    "val": "midvals",
    "min": "mins",
    "max": "maxes",
    "mean": "means",
    "std": "stds",
    **{f"p{q:02d}": f"p{q:02d}s" for q in (1, 5, 16, 50, 84, 95, 99)},
}


def cheta_stats_path(dest: Path, stat: str) -> Path:
    """The cheta-layout statistics file of ``ccd_temp`` for ``stat`` (cheta's
    ``<content>/<interval>/<MSID>.h5``)."""
    return dest / stat / "CCD_TEMP.h5"


def build_cheta_stats(root: Path, dest: Path, stat: str, t0: float, t1: float) -> int:
    """The cheta-layout statistics store of ``ccd_temp``'s ``stat`` bins over [t0, t1), from
    the same values mica serves (its bins read from ``root``): one HDF5 file holding one
    PyTables table ``data`` of a row per bin, cheta's columns (``index`` and ``n`` int32; the
    values float64, here the values mica gives; 5-minute rows without the std and
    percentiles, as cheta's), zlib level 5 as cheta writes them. Returns the rows."""
    import tables

    from mica.archive import aca_hdr3

    msid = aca_hdr3.MSID("ccd_temp", t0, t1, data_root=root, stat=stat)
    names = [c for c in CHETA_COLUMNS if stat == "daily" or not (c == "std" or c[0] == "p")]
    columns = [np.asarray(getattr(msid, CHETA_COLUMNS[c])) for c in names]
    columns[:2] = [c.astype(np.int32) for c in columns[:2]]
    rows = np.rec.fromarrays(columns, names=names)
    path = cheta_stats_path(dest, stat)
    path.parent.mkdir(parents=True, exist_ok=True)
    filters = tables.Filters(complevel=5, complib="zlib")
    tmp = path.with_suffix(".tmp")  # renamed when whole: --reuse never takes a partial one
    with tables.open_file(str(tmp), "w", filters=filters) as h5:
        h5.create_table(h5.root, "data", rows, f"{stat} sampling", expectedrows=2e7)
    tmp.rename(path)
    return len(rows)


def cheta_stats_fetch(dest: Path, stat: str, t0: float, t1: float) -> dict[str, np.ndarray]:
    """cheta's statistics fetch (``fetch.MSID._get_stat_data``): open the file, the bins'
    midpoints from the whole ``index`` column, the rows between ``t0`` and ``t1``, one array
    per column."""
    import tables

    dt = STATS_DT[stat]
    with tables.open_file(str(cheta_stats_path(dest, stat))) as h5:
        table = h5.root.data
        times = (table.col("index") + 0.5) * dt
        row0, row1 = np.searchsorted(times, [t0, t1])
        rows = table[row0:row1]
    out = {name: rows[name] for name in rows.dtype.names}
    out["times"] = times[row0:row1]
    return out


def timed(func, repeat: int = 1) -> tuple[float, float]:
    """Best (wall, CPU) seconds of ``repeat`` calls: on a busy machine the process's CPU time
    is what the call would take on an idle one (the files are in the page cache)."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def ms(wall_cpu: tuple[float, float]) -> str:
    return f"{wall_cpu[0] * 1000:.1f} / {wall_cpu[1] * 1000:.1f} ms"


def ratio(a: tuple[float, float], b: tuple[float, float]) -> str:
    """mica's (wall, CPU) against the cheta layout's."""
    return f"{a[0] / b[0]:.2f}x / {a[1] / b[1]:.2f}x cheta (<= 0.75x)"


def measure(
    year_root: Path, mission_root: Path, years: int, peers: dict[str, Path]
) -> list[tuple[str, str, str]]:
    """The table's measured rows, in this (fresh) process; ``peers``: the cheta-layout
    statistics store of each statistic."""
    import h5py  # imported by the readers anyway: not part of a read
    import tables  # noqa: F401  (imported by a session using cheta: not part of a read)

    from mica.archive import aca_hdr3, hdr3_stats
    from mica.engine.h5chunks import open_h5_id
    from mica.products.hdr3_items import get_item

    item = get_item("ccd_temp")
    y0 = to_secs(YEAR_START)
    y1 = y0 + 365 * DAY
    m0 = to_secs(MISSION_START)
    m1 = m0 + years * 365.25 * DAY
    rows = [("(figures: wall / CPU time)", "", "")]
    for label, root, stat, t0, t1 in (
        ("1 year 5min", year_root, "5min", y0, y1),
        (f"{years} years daily", mission_root, "daily", m0, m1),
    ):

        def read(root=root, stat=stat, t0=t0, t1=t1):
            return aca_hdr3.MSID("ccd_temp", t0, t1, data_root=root, stat=stat)

        def peer(stat=stat, t0=t0, t1=t1):
            return cheta_stats_fetch(peers[stat], stat, t0, t1)

        first, peer_first = timed(read), timed(peer)  # each its first call
        got = read()
        best, peer_best = timed(read, 10), timed(peer, 10)
        same = np.array_equal(peer()["max"], got.maxes)
        rows += [
            (
                f"MSID ccd_temp {label}, first read",
                ms(first),
                f"{len(got)} bins of {int(got.samples.sum())} samples; <= 30 ms: "
                f"{'met' if max(first) <= 0.030 else 'MISSED'}",
            ),
            ("  cheta-layout statistics, first read", ms(peer_first), ratio(first, peer_first)),
            (f"MSID ccd_temp {label}, best of 10", ms(best), ""),
            ("  cheta-layout statistics, best of 10", ms(peer_best), ratio(best, peer_best)),
            ("  the same bins", "", f"{same}"),
        ]
        paths = chunk_paths(root, t0, t1)

        def floor(paths=paths, stat=stat):
            for path in paths:
                dset = h5py.h5d.open(open_h5_id(path), f"ST.676.{stat}".encode())
                dset.read(h5py.h5s.ALL, h5py.h5s.ALL, np.empty(dset.shape))
                dset.close()  # then the file, with its last identifier

        opened = timed(floor, 5)
        rows.append(
            (
                f"  floor of the periods: open {len(paths)} chunks, read the item",
                ms(opened),
                f"{opened[1] / len(paths) * 1000:.2f} ms CPU a chunk",
            )
        )

    # the same year's bins from the samples (the sample tables): a read without statistics
    def samples(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        return aca_hdr3._good_samples(item, a, b, year_root, True)

    slow: list[np.ndarray] = []
    computed = timed(
        lambda: slow.append(hdr3_stats.read_stats(item, "5min", y0, y1, samples, year_root, False))
    )
    fast = aca_hdr3.MSID("ccd_temp", y0, y1, data_root=year_root, stat="5min")
    same = np.array_equal(slow[0][0], fast.indexes) and np.array_equal(slow[0][3], fast.maxes)
    rows.append(("1 year 5min from the samples (sample tables)", ms(computed), f"same: {same}"))
    return rows


def build_cost(root: Path) -> tuple[float, float, int]:
    """(sample tables alone, with statistics) seconds for the derive of one full-cadence
    100-day chunk, and the bytes of its statistics datasets."""
    from mica.engine.colstore import ColumnStore
    from mica.engine.h5chunks import open_h5
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0
    from mica.products.hdr3_samples import sample_table
    from mica.products.hdr3_stats import hdr3_tables

    with ArchiveIndex(L0, root) as index:
        chunk = max(
            index.conn.execute("SELECT * FROM store_chunks WHERE part LIKE 'hd3s/%'"),
            key=lambda r: r["nrows"],
        )
        store = ColumnStore(L0, index)
        by_name = store._chunk_arrays(dict(chunk))
        where, params = L0.partition_where(chunk["part"])
        files = index.query(where, params)
    arrays = [by_name[f["filename"]] for f in files]
    number = int(chunk["part"].split("/")[-1])
    period = L0.store_description.view_named("hd3s").period_range(number)
    alone = best_of(lambda: sample_table(files, arrays), 1)
    both = best_of(lambda: hdr3_tables(files, arrays, period), 1)
    with open_h5(root / chunk["path"]) as h5:
        size = sum(h5[n].id.get_storage_size() for n in h5 if n.startswith("ST."))
    return alone, both, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="keep the archives in --work")
    parser.add_argument("--years", type=int, default=25, help="of daily statistics")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mica-bench-stats-"))
    year_root, mission_root = work / "year" / "aca0", work / "mission" / "aca0"
    rows = []
    mission_days = int(args.years * 365.25)
    for root, start, days, thin, label in (
        (year_root, YEAR_START, 365, 1, "1 year, 4.1 s"),
        (mission_root, MISSION_START, mission_days, THIN, f"{args.years} years, thinned"),
    ):
        if args.reuse and (root / "store").is_dir():
            rows.append((f"build {label}", "reused", ""))
            continue
        shutil.rmtree(root, ignore_errors=True)
        seconds, nrows = build(root, start, days, thin)
        rows.append((f"build {label} (slots 6-7)", f"{seconds:.0f} s", f"{nrows} rows"))
    # the cheta-layout statistics stores of the same bins: the year's 5-minute, the mission's
    # daily
    peers = {"5min": work / "cheta-stats-year", "daily": work / "cheta-stats-mission"}
    m0 = to_secs(MISSION_START)
    for stat, root, t0, t1 in (
        ("5min", year_root, to_secs(YEAR_START), to_secs(YEAR_START) + 365 * DAY),
        ("daily", mission_root, m0, m0 + args.years * 365.25 * DAY),
    ):
        if not (args.reuse and cheta_stats_path(peers[stat], stat).exists()):
            built = build_cheta_stats(root, peers[stat], stat, t0, t1)
            rows.append((f"cheta-layout {stat} statistics store", f"{built} rows", ""))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
        rows += fresh.submit(measure, year_root, mission_root, args.years, peers).result()
    alone, both, size = build_cost(year_root)
    rows += [
        ("derive of a 100-day chunk, sample tables", f"{alone:.2f} s", "slots 6-7, 4.1 s"),
        ("  with the statistics of all 38 items", f"{both:.2f} s", f"+{both - alone:.2f} s"),
        ("  statistics datasets in the chunk", f"{size / 1e6:.2f} MB", "7 items with samples"),
    ]
    print_table(f"Header-3 statistics (work folder {work})", rows)
    (work / "bench_hdr3_stats.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
