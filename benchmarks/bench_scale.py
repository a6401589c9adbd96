"""Mission scale (issue 28): index, update, check and read costs beside the archive's size.

    python benchmarks/bench_scale.py [--days 100] [--rows 1800000] [--years 25]
        [--work DIR] [--reuse] [--rounds 3] [--only flat|stats]

Builds, once (``--reuse`` keeps what the work folder holds):

* ``small``: a contiguous simulated archive of ``--days`` days from 2012:001 (all slots)
  through the real ingest, but its last day, which is the day appended below;
* ``grown``: a copy of small's index grown to ``--rows`` rows with synthetic rows of files
  of realistic times and durations spread over 1999-2025 (`mica.sim.index_rows`; they have
  no files: the index-only figures), beside links to small's folders (readers only);
* ``prev`` and ``prev-grown``: the day before the appended one alone, and the same with its
  index grown to ``--rows`` rows (copied afresh for each append);
* ``slot-period``: the days of the last L0 slot store period (10 days) wholly inside small's
  but its last day (`slot_period`), the day appended to it;
* ``mission``: ``--years`` of header-3 store from 1999:204 through the store's real chunk
  build (`mica.sim.hdr3_store`: slots 6 and 7, 8x8, the simulator's cadence thinned to a
  pair of rows every 328 s, as benchmarks/bench_hdr3_stats.py builds it), and
  ``mission-last``, its days in its last ``hd3s`` period alone;
* cheta-layout stores (benchmarks/bench_speed.py's `build_cheta`) of the same ccd_temp_fine
  values, for small's days and for the mission; and cheta-layout statistics stores
  (benchmarks/bench_hdr3_stats.py's `build_cheta_stats`: one PyTables table per statistic
  over the whole mission) of the same ``ccd_temp`` 5-minute and daily bins.

Then measures in fresh processes (``--child``), interleaved round after round (the best round
counts; a first call's figures, one measurement a round, their own best round): every index
query of an update or a reader on small's and grown's index (flat: at most 1.2x); appending one
day to prev-grown, prev, small (its store chunks hold ``--days`` - 1 days: the appended day's
chunks grow, up to a whole period) and an empty archive (at most 1.2x empty), and a slot
store period's last day to slot-period (its slot chunks at their largest) and to an empty
archive (at most 1.2x); ``mica check`` of prev-grown (at most 15 s and 500 MB; CPU time
beside the wall time, as the machine may be shared); header-3 reads against the cheta layout
(at most 0.75x) and their memory (at most 1.5x the returned arrays); statistics; small reads.
Each target is printed beside its figure. ``--only flat`` builds and measures the index,
append and check figures alone (no header-3 mission store, no reads); ``--only stats`` the
mission store, its cheta-layout statistics peer and the statistics figures alone (and the
mission appends below).

Appending to the mission (``hd3_append``, in each round, the best round counting: now and
then a child ran all its appends slow; not with ``--only flat``): the CPU time of appending
the day after the mission's last (its two files, as the mission's are built) to a copy of
``mission``, to ``mission-last`` (the mission's days in its last ``hd3s`` period alone, built
beside it: the same chunks appended to) and to an empty archive, each the best of 3: the
mission within 1.2x of its last period alone (what 25 years add: the mission table derived
again, `mica.engine.store_tables`).

Appending into a long header-3 period (``hd3_period``, once, outside the rounds): a 100-day
header-3 store (views ``hd3`` and ``hd3s``, every slot at the simulator's full 8x8 cadence, in
files of 5000 s, through the real chunk build, `mica.sim.hdr3_store`) built one day at a
time from the start of a period; the CPU time of appending day 1 (empty), 2, 20 and 100 of
the period, and day 101 (the next period's first: its first file lies within the sample view's
reach of the period before, whose chunk it extends too), each the best of 3 (the archive copied
afresh for each), against day 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from bench_archive import DAY, best_of, ingest, print_table, write_upstream  # noqa: E402
from bench_hdr3_stats import (  # noqa: E402
    FILE_OFFSET,
    MISSION_START,
    THIN,
    build_cheta_stats,
    cheta_stats_fetch,
    cheta_stats_path,
)
from bench_hdr3_stats import build as build_mission  # noqa: E402
from bench_speed import build_cheta, cheta_fetch  # noqa: E402

START = "2012:001:00:00:00"
#: the year of 5-minute statistics read from the mission store
YEAR_START = "2013:001:00:00:00"
INDEX = "archfiles.db3"
#: the index queries measured on small's and grown's index
QUERIES = [
    "resume_time",
    "partition rows (10 d, slot 3)",
    "header-3 partition rows (100 d)",
    "overlap of a new file",
    "a file's row",
]
#: the days of a header-3 period whose appends are timed (`_hd3_period`)
HD3_DAYS = "1,2,20,100,101"
#: the synthetic rows' range (the real archive's days are kept free of them)
SYNTH_RANGE = ("1999:204:00:00:00", "2025:365:00:00:00")


def secs(date: str) -> float:
    from mica.time import to_secs

    return float(to_secs(date))


# --- building ------------------------------------------------------------------------------
def synthetic(work: Path, rows: int, keep: tuple[float, float]) -> Path:
    """A database of ``rows`` synthetic L0 index rows (made once; copied into indexes)."""
    from mica.engine.index import create_tables
    from mica.products.aca_l0 import L0
    from mica.sim.index_rows import add_index_rows

    path = work / f"synthetic-{rows}-{int(keep[0])}-{int(keep[1])}.db3"
    if path.exists() and _rows(path.parent, path.name) < rows:  # an older generator's
        path.unlink()
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        create_tables(conn, L0)
        made = "SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE INDEX%'"
        for (name,) in conn.execute(made).fetchall():
            conn.execute(f"DROP INDEX {name}")  # inserted faster; the copies index them
        add_index_rows(conn, rows, secs(SYNTH_RANGE[0]), secs(SYNTH_RANGE[1]), keep)
        conn.close()
        tmp.rename(path)
    return path


def grow(index: Path, synth: Path, rows: int) -> None:
    """Add synthetic rows to an index until it holds ``rows``."""
    conn = sqlite3.connect(index)
    conn.execute("PRAGMA cache_size = -400000")
    have = conn.execute("SELECT count(*) FROM archfiles").fetchone()[0]
    conn.execute("ATTACH ? AS synth", (str(synth),))
    with conn:
        conn.execute(
            "INSERT INTO archfiles SELECT * FROM synth.archfiles ORDER BY rowid LIMIT ?",
            (max(rows - have, 0),),
        )
    conn.execute("DETACH synth")
    conn.close()


def copy_archive(src: Path, dest: Path) -> None:
    """A copy of archive ``src`` at ``dest`` for an update to change: its archived files
    hard links (an update adds files beside them, never changes one), everything else (the
    index, the store's chunk files: an update unlinks the old generation, freeing its own
    extents as in the archive) copied. Small's archived files copied too (5.5 GB) put the
    kernel's work after that copy into the measured append: 1.8 s of CPU for 1.25 s, system
    time 1.0 s for 0.3-0.4 s (measured), the "small" append 1.5x where it is 1.1x."""
    shutil.rmtree(dest, ignore_errors=True)

    def place(a: str, b: str) -> None:
        if a.endswith((".fits.gz", ".fits")):
            try:
                os.link(a, b)
                return
            except OSError:  # (another file system)
                pass
        shutil.copy2(a, b)

    shutil.copytree(src, dest, symlinks=True, copy_function=place)


def build(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    if args.only == "stats":
        return build_stats(args)
    work: Path = args.work
    t0 = secs(START)
    last = t0 + (args.days - 1) * DAY  # the appended day
    upstream = work / "upstream"
    rows: list[tuple[str, str, str]] = []
    tic = time.perf_counter()
    files = write_upstream(upstream, START, args.days)
    simulated = f"{time.perf_counter() - tic:.0f} s"
    rows.append(("simulated upstream", simulated, f"{len(files)} files"))
    small = work / "small" / "aca0"
    if not (args.reuse and (small / INDEX).exists()):
        shutil.rmtree(small, ignore_errors=True)
        rows.append(("ingest small", f"{ingest(upstream, small, START, args.days - 1):.0f} s", ""))
    # the day before the appended one, the appended one and a slot store period's last day
    # (`slot_period`), as folders of their own
    period = slot_period(args)
    days = (("day-prev", last - DAY), ("day-last", last), ("day-slot-last", period[1] - DAY))
    for name, a in days:
        folder = work / name
        if not folder.exists():
            folder.mkdir()
            for path in files:
                if a <= float(path.name[4:].split("N")[0]) < a + DAY:
                    os.link(path, folder / path.name)
    prev = work / "prev" / "aca0"
    if not (args.reuse and (prev / INDEX).exists()):
        shutil.rmtree(prev, ignore_errors=True)
        ingest(work / "day-prev", prev, to_date(last - DAY), 1)
    slot = work / "slot-period" / "aca0"  # the period's days but its last
    if not (args.reuse and (slot / INDEX).exists()):
        shutil.rmtree(slot, ignore_errors=True)
        ingest(upstream, slot, to_date(period[0]), (period[1] - period[0]) / DAY - 1)
    # no synthetic row in the store periods of the real days (100 days for header 3): a
    # partition's rebuild would look for their files
    keep = (t0 - 200 * DAY, t0 + (args.days + 200) * DAY)
    synth = synthetic(work, args.rows, keep)
    grown = work / "grown" / "aca0"
    if not (args.reuse and (grown / INDEX).exists()):
        shutil.rmtree(grown, ignore_errors=True)
        grown.mkdir(parents=True)
        for entry in small.iterdir():  # readers only: the same files and chunks
            if entry.name != INDEX:
                (grown / entry.name).symlink_to(entry)
        shutil.copy(small / INDEX, grown / INDEX)
        tic = time.perf_counter()
        grow(grown / INDEX, synth, args.rows)
        rows.append(("grow small's index copy", f"{time.perf_counter() - tic:.0f} s", ""))
    prev_grown = work / "prev-grown" / "aca0"
    if not (args.reuse and (prev_grown / INDEX).exists()):
        copy_archive(prev, prev_grown)
        grow(prev_grown / INDEX, synth, args.rows)
    if args.only == "flat":
        return rows
    rows += build_stats(args)
    mission = work / "mission" / "aca0"
    for root, dest, start, days in (
        (small, work / "cheta-small", START, args.days - 1),
        (mission, work / "cheta-mission", MISSION_START, args.years * 365.25),
    ):
        if not (args.reuse and (dest / INDEX).exists()):
            build_cheta(root, dest, days, start)
    return rows


def slot_period(args: argparse.Namespace) -> tuple[float, float]:
    """The (start, stop) of the last L0 slot store period (`STORE_PERIOD`) wholly inside the
    archive's days: appending its last day extends the slot chunks at their largest."""
    from mica.products.aca_l0 import STORE_PERIOD

    stop = secs(START) + (args.days - 1) * DAY  # (the appended day not included)
    number = int(stop // STORE_PERIOD) - 1
    if number * STORE_PERIOD < secs(START):
        raise SystemExit(f"--days {args.days}: no whole slot store period in the archive")
    return number * STORE_PERIOD, (number + 1) * STORE_PERIOD


def build_stats(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """The mission's header-3 store and the cheta-layout statistics stores of its bins."""
    rows = []
    mission = args.work / "mission" / "aca0"
    if not (args.reuse and (mission / "store").is_dir()):
        shutil.rmtree(mission, ignore_errors=True)
        seconds, nrows = build_mission(mission, MISSION_START, int(args.years * 365.25), THIN)
        rows.append((f"build {args.years} y header-3 store", f"{seconds:.0f} s", f"{nrows} rows"))
    derive_tables(mission)  # a reused store of an earlier table layout: derived once here
    last = args.work / "mission-last" / "aca0"
    if not (args.reuse and (last / "store").is_dir()):
        shutil.rmtree(last, ignore_errors=True)
        first, days = _last_period(args)
        build_mission(last, to_date(secs(MISSION_START) + first * DAY), days - first, THIN)
    dest = args.work / "cheta-stats-mission"
    t0 = secs(MISSION_START)
    for stat in ("daily", "5min"):
        if not (args.reuse and cheta_stats_path(dest, stat).exists()):
            built = build_cheta_stats(mission, dest, stat, t0, t0 + args.years * 365.25 * DAY)
            rows.append((f"cheta-layout {stat} statistics", f"{built} rows", ""))
    return rows


def derive_tables(root: Path) -> None:
    """The store tables of the archive ``root`` derived where they are not current (e.g. a
    reused store built by code of an earlier table layout: else its readers read the chunks,
    and its first append derives them whole)."""
    from mica.engine.colstore import ColumnStore
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0

    with ArchiveIndex(L0, root) as index:
        ColumnStore(L0, index).derive_tables()


def _last_period(args: argparse.Namespace) -> tuple[int, int]:
    """The mission's first day (since `MISSION_START`) in its last ``hd3s`` period, and its
    number of days (the day appended to it, `_hd3_append`)."""
    from mica.products.aca_l0 import L0
    from mica.products.hdr3_samples import SAMPLES_VIEW

    period = L0.store_description.view_named(SAMPLES_VIEW).period
    days = int(args.years * 365.25)
    t0 = secs(MISSION_START)
    last = t0 + (days - 1) * DAY + FILE_OFFSET
    first = int(np.ceil(((last // period) * period - t0 - FILE_OFFSET) / DAY))
    return first, days


def to_date(t: float) -> str:
    from mica.time import to_date as date

    return date(t)


# --- children: each runs in a fresh process and prints {"s": seconds, ...} -----------------
def _timed(func, repeat: int) -> dict:
    """First call (wall, CPU), then the best of ``repeat`` more (wall, and CPU: on a shared
    machine this process's CPU time is what the call takes alone, its files in the page
    cache)."""
    wall, cpu = time.perf_counter(), time.process_time()
    func()
    first = {"first": time.perf_counter() - wall, "first_cpu": time.process_time() - cpu}
    cpus = []
    for _ in range(repeat):
        cpu = time.process_time()
        func()
        cpus.append(time.process_time() - cpu)
    return {"s": best_of(func, repeat), "cpu": min(cpus), **first}


def _memory(func) -> dict:
    """Peak traced allocation of a call against the bytes of the arrays it returns."""
    import tracemalloc

    tracemalloc.start()
    out = func()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    arrays = out.values() if isinstance(out, dict) else [out]
    returned = 0
    for msid in arrays:
        for name in ("times", "vals"):
            value = getattr(msid, name, None)
            if value is not None:
                returned += np.asarray(np.ma.getdata(value)).nbytes
                returned += np.ma.getmaskarray(value).nbytes if name == "vals" else 0
    return {"peak": peak, "returned": returned}


def child(name: str, root: Path, arg: str) -> dict:
    """One measure; ``root`` the ``aca0`` folder (or the cheta store), ``arg`` its range."""
    if name == "query":  # an index query, opened as a reader would
        from mica.engine.index import ArchiveIndex
        from mica.products.aca_l0 import L0

        index = ArchiveIndex.open_for_reading(L0, root)
        t0 = secs(START) + float(arg) * DAY
        queries = {
            QUERIES[0]: index.resume_time,
            QUERIES[1]: lambda: index.partition_rows(
                L0.partition({"slot": 3, "imgsize": 8, "filetime": t0})
            ),
            QUERIES[2]: lambda: index.partition_rows(
                L0.partition({"slot": 7, "imgsize": 8, "filetime": t0}, ["TIME", "HD3TLM62"])
            ),
            QUERIES[3]: lambda: index.overlapping(
                {"filename": "x", "slot": 3, "tstart": t0, "tstop": t0 + 1000}
            ),
            QUERIES[4]: lambda: index.get("acaf000000000N001_3_img0.fits.gz"),
        }
        return {label: best_of(func, 20) for label, func in queries.items()}
    if name == "files_1d":
        from mica.archive import aca_l0

        t0 = secs(START) + float(arg) * DAY
        return _timed(lambda: aca_l0.get_files(start=t0, stop=t0 + DAY, data_root=root), 10)
    if name.startswith("msid_"):  # msid_<days>: ccd_temp_fine over <days> from the range's start
        from mica.archive import aca_hdr3

        t0 = secs(arg)
        t1 = t0 + float(name[5:]) * DAY
        return _timed(lambda: aca_hdr3.MSID("ccd_temp_fine", t0, t1, data_root=root), 5)
    if name.startswith("msidmem_"):
        from mica.archive import aca_hdr3

        t0 = secs(arg)
        t1 = t0 + float(name[8:]) * DAY
        return _memory(lambda: aca_hdr3.MSID("ccd_temp_fine", t0, t1, data_root=root))
    if name.startswith("cheta_"):
        t0 = secs(arg)
        t1 = t0 + float(name[6:]) * DAY
        return _timed(lambda: cheta_fetch(root, t0, t1), 5)
    if name.startswith("msidset_"):
        from mica.archive import aca_hdr3

        t0 = secs(arg)
        t1 = t0 + float(name[8:]) * DAY
        items = ["ccd_temp_fine", "aca_temp", "dac"]
        return _timed(lambda: aca_hdr3.MSIDset(items, t0, t1, data_root=root), 3)
    if name.startswith("stat_"):  # stat_<5min|daily>_<days>
        from mica.archive import aca_hdr3

        _, stat, days = name.split("_")
        t0 = secs(arg)
        t1 = t0 + float(days) * DAY
        return _timed(lambda: aca_hdr3.MSID("ccd_temp", t0, t1, data_root=root, stat=stat), 5)
    if name.startswith("chetastat_"):  # chetastat_<5min|daily>_<days>: the peer of stat_
        import tables  # noqa: F401  (imported by a session using cheta: not part of a read)

        _, stat, days = name.split("_")
        t0 = secs(arg)
        t1 = t0 + float(days) * DAY
        return _timed(lambda: cheta_stats_fetch(root, stat, t0, t1), 5)
    if name == "images_10min":
        from mica.archive import aca_l0

        t0 = secs(START) + float(arg) * DAY
        return _timed(lambda: aca_l0.get_aca_images(t0, t0 + 600, data_root=root), 10)
    if name.startswith("slot_"):  # slot_<days>: get_slot_data of TIME, TEMPCCD
        from mica.archive import aca_l0

        t0 = secs(START)
        t1 = t0 + float(name[5:]) * DAY
        cols = ["TIME", "TEMPCCD"]
        out = aca_l0.get_slot_data(t0, t1, 3, data_root=root, columns=cols)
        res = _timed(lambda: aca_l0.get_slot_data(t0, t1, 3, data_root=root, columns=cols), 5)
        # one copy of the bytes returned (values and mask), timed as the call is: CPU time
        # against CPU time (bench_reads' measure); and as raw bytes, for reference
        data, mask = np.ma.getdata(out), np.ma.getmaskarray(out)
        copy = _timed(lambda: (data.copy(), mask.copy()), 5)
        raw = _timed(lambda: (data.view(np.uint8).copy(), mask.view(np.uint8).copy()), 5)
        return {**res, "copy": copy["s"], "copy_cpu": copy["cpu"], "bytes_cpu": raw["cpu"]}
    if name == "append":  # one day from the folder ``arg`` into ``root``
        from mica.engine.time_update import update_archive
        from mica.products.aca_l0 import L0

        paths = sorted(Path(arg).glob("*.fits.gz"))
        a = min(float(p.name[4:].split("N")[0]) for p in paths)
        a = a - a % DAY
        wall, cpu = time.perf_counter(), cpu_seconds()
        report = update_archive(L0, f"dir:{arg}", a, a + DAY, data_root=root)
        return {
            "s": time.perf_counter() - wall,
            "cpu": cpu_seconds() - cpu,
            "files": len(report.ingested),
        }
    if name == "hd3_period":  # appending days to a header-3 period (``arg``: the days timed)
        return _hd3_period(root, [int(d) for d in arg.split(",")])
    if name == "hd3_append":  # the mission's day ``arg`` appended to a copy of ``root``
        return _hd3_append(root, int(arg))
    if name == "check":
        from mica.engine.index_check import check_archive
        from mica.products.aca_l0 import L0

        wall, cpu = time.perf_counter(), time.process_time()
        report = check_archive(L0, root)
        return {
            "s": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu,
            "rss": peak_rss(),
            "files": report.files,
            "problems": len(report.problems),
        }
    raise SystemExit(f"unknown child {name}")


#: a header-3 period's start (the ``hd3s`` view's 100-day periods) and its files' length
HD3_PERIOD_START = 52 * 100 * DAY
HD3_FILE_SECS = 5000.0


def _hd3_day(day: int) -> list:
    """The simulated 8x8 files of every slot of day ``day`` of the header-3 period."""
    from mica.sim.hdr3_store import day_files

    return day_files(HD3_PERIOD_START + day * DAY, file_secs=HD3_FILE_SECS)


def _hd3_period(root: Path, timed: list[int]) -> dict:
    """CPU seconds of appending each day of ``timed`` (1 = the period's first) to the days
    before it, best of 3 (see the module description)."""
    from mica.sim.hdr3_store import store_hdr3_files

    shutil.rmtree(root, ignore_errors=True)
    out, trial = {}, root.with_name(root.name + "-trial")
    for day in range(1, max(timed) + 1):
        files = _hd3_day(day - 1)
        if day in timed:
            best = np.inf
            for _ in range(3):
                shutil.rmtree(trial, ignore_errors=True)
                if root.exists():
                    shutil.copytree(root, trial)
                os.sync()  # the copy's pages written out: not the append's cost
                cpu = time.process_time()
                store_hdr3_files(trial, files)
                best = min(best, time.process_time() - cpu)
            out[str(day)] = best
        store_hdr3_files(root, files)
    shutil.rmtree(trial, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    return out


def _hd3_append(root: Path, day: int) -> dict:
    """CPU seconds of appending the mission's day ``day`` (since `MISSION_START`, its files
    as `build_mission` writes them) to a copy of ``root`` (``empty``: to an empty archive),
    best of 3."""
    from mica.sim.hdr3_store import Hdr3File, file_times, store_hdr3_files

    a = secs(MISSION_START) + day * DAY + FILE_OFFSET
    times = file_times(a, a + DAY, every=THIN, pair=THIN > 1)
    files = [Hdr3File(6, times), Hdr3File(7, times)]
    trial = root.with_name(root.name + "-trial")
    best = np.inf
    for _ in range(3):
        shutil.rmtree(trial, ignore_errors=True)
        if root.name != "empty":
            shutil.copytree(root, trial)
            derive_tables(trial)  # (a no-op when `build_stats` derived them with this code)
        os.sync()  # the copy's pages written out: not the append's cost
        cpu = time.process_time()
        store_hdr3_files(trial, files)
        best = min(best, time.process_time() - cpu)
    shutil.rmtree(trial, ignore_errors=True)
    return {"s": best}


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the validating workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def peak_rss() -> int:
    """This process's peak resident bytes (``VmHWM``: ``ru_maxrss`` carries the forking
    parent's over the exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(name: str, root: Path, arg: str = "") -> dict:
    cmd = [sys.executable, str(HERE), "--child", name, "--root", str(root), "--arg", arg]
    env = {**os.environ, "MICA_WORKERS": "1"}  # one worker: figures of one core
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the parent ------------------------------------------------------------------------------
#: a first call's figures: one measurement a round, each kept at its own best round (not
#: the round of the best warm call, which put one round's slow first call in the table)
FIRST_FIELDS = ("first", "first_cpu")


class Figures:
    """The best figure of each measure over the rounds: the round best by ``by``, and the
    best of each of `FIRST_FIELDS` over every round."""

    def __init__(self) -> None:
        self.best: dict[str, dict] = {}
        self.firsts: dict[str, dict[str, float]] = {}

    def add(self, key: str, res: dict, by: str = "s") -> None:
        if "error" in res:
            print(f"{key}: {res['error']}", file=sys.stderr)
            return
        old = self.best.get(key)
        if old is None or res.get(by, np.inf) < old.get(by, np.inf):
            self.best[key] = res
        kept = self.firsts.setdefault(key, {})
        for field in FIRST_FIELDS:
            if field in res:
                kept[field] = min(kept.get(field, np.inf), res[field])

    def get(self, key: str, field: str = "s") -> float:
        if field in self.firsts.get(key, {}):
            return float(self.firsts[key][field])
        return float(self.best.get(key, {}).get(field, np.nan))


def ms(s: float) -> str:
    return f"{s * 1000:.2f} ms" if s < 0.1 else f"{s * 1000:.0f} ms"


def measure_stats(fig: Figures, args: argparse.Namespace) -> None:
    """One round of the statistics reads: mica's and the cheta-layout peer's, interleaved."""
    mission, peer = args.work / "mission" / "aca0", args.work / "cheta-stats-mission"
    years = args.years * 365.25
    for stat, days, start in (("daily", years, MISSION_START), ("5min", 365, YEAR_START)):
        for key, child, root in (
            (f"stat {stat}", f"stat_{stat}_{days}", mission),
            (f"cheta stat {stat}", f"chetastat_{stat}_{days}", peer),
        ):
            fig.add(key, run_child(child, root, start))


def measure_mission_append(fig: Figures, args: argparse.Namespace) -> None:
    """Appending the day after the mission's last to the mission, to its last period alone
    and to an empty archive (each the best of 3)."""
    work, day = args.work, _last_period(args)[1]
    for label, root in (
        ("mission", work / "mission" / "aca0"),
        ("last period", work / "mission-last" / "aca0"),
        ("empty", work / "append-hd3" / "empty"),
    ):
        fig.add(f"hd3 append {label}", run_child("hd3_append", root, str(day)))


def measure(args: argparse.Namespace) -> Figures:
    work: Path = args.work
    if args.only == "stats":
        fig = Figures()
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
            measure_stats(fig, args)
            measure_mission_append(fig, args)
        return fig
    small, grown = work / "small" / "aca0", work / "grown" / "aca0"
    prev, prev_grown = work / "prev" / "aca0", work / "prev-grown" / "aca0"
    mission = work / "mission" / "aca0"
    mid = str(max(args.days // 2 - 1, 0))  # a day inside the archive
    span = args.days - 1
    fig = Figures()
    long_days = min(19.0, span)
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        for label, root in (("small", small), ("grown", grown)):
            res = run_child("query", root, mid)
            if "error" in res:
                fig.add(f"{label} query", res)
            for query, s in res.items():
                fig.add(f"{label} {query}", {"s": s})
            fig.add(f"{label} files_1d", run_child("files_1d", root, mid))
            fig.add(f"{label} images_10min", run_child("images_10min", root, mid))
            fig.add(f"{label} msid_1", run_child("msid_1", root, START))
        last_day, slot_last = work / "day-last", work / "day-slot-last"
        # appending the last day: to an empty archive, to prev (one day), to prev-grown, to
        # small (the appended day's chunks hold earlier days); and a slot store period's last
        # day: to an empty archive, to the period's other days (its slot chunks at their largest)
        appends = (
            ("empty", None, last_day),
            ("prev", prev, last_day),
            ("prev-grown", prev_grown, last_day),
            ("small", small, last_day),
            ("slot empty", None, slot_last),
            ("slot period", work / "slot-period" / "aca0", slot_last),
        )
        for label, src, day in appends:
            dest = work / "append" / "aca0"
            if src is None:
                shutil.rmtree(dest, ignore_errors=True)
            else:
                copy_archive(src, dest)
            # the copy's dirty pages written out now: else the update's first fsync of the
            # index (its checkpoint as it closes) pays their writeback, 40 ms CPU for
            # prev-grown's 385 MB index, a cost of the copy and not of the update (measured)
            os.sync()
            # the round of least CPU time: the machine may be shared
            res = run_child("append", dest, str(day))
            fig.add(f"append {label}", res, by="cpu")
        shutil.rmtree(work / "append", ignore_errors=True)
        if args.only == "flat":
            continue
        for days in dict.fromkeys((1 / 24, 1.0, long_days, span)):
            key = f"{days:g}"
            fig.add(f"mica msid {key}", run_child(f"msid_{days}", small, START))
            fig.add(f"cheta msid {key}", run_child(f"cheta_{days}", work / "cheta-small", START))
        fig.add("mica msidset", run_child(f"msidset_{span}", small, START))
        for days in (1.0, span):
            fig.add(f"slot {days:g}", run_child(f"slot_{days}", small), by="cpu")
        years = args.years * 365.25
        fig.add("mica msid mission", run_child(f"msid_{years}", mission, MISSION_START))
        cheta = work / "cheta-mission"
        fig.add("cheta msid mission", run_child(f"cheta_{years}", cheta, MISSION_START))
        measure_stats(fig, args)
        measure_mission_append(fig, args)
    for label, root in (("check prev-grown", prev_grown), ("check prev", prev)):
        fig.add(label, run_child("check", root))
    fig.add("hd3 period", run_child("hd3_period", work / "hd3-period" / "aca0", HD3_DAYS))
    if args.only == "flat":
        return fig
    fig.add("msid memory", run_child(f"msidmem_{span}", small, START), by="peak")
    fig.add("msid memory mission", run_child(f"msidmem_{years}", mission, MISSION_START), by="peak")
    return fig


def versus(label: str, a: float, b: float, target: str = "<= 0.75x") -> tuple[str, str, str]:
    """A row of mica's figure beside the cheta layout's."""
    return (label, f"{ms(a)} / {ms(b)}", f"{a / b:.2f}x cheta ({target})")


def stats_rows(fig: Figures, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """The statistics reads beside the cheta-layout statistics store (cold: a fresh
    process's first call)."""
    g, rows = fig.get, []
    for stat, label in (("daily", f"daily, {args.years} y"), ("5min", "5min, 1 y (thinned)")):
        mica, cheta = f"stat {stat}", f"cheta stat {stat}"
        first, cpu = g(mica, "first"), g(mica, "first_cpu")
        met = "met" if max(first, cpu) <= 0.030 else "MISSED"
        rows += [
            (f"MSID ccd_temp {label}, cold", f"{ms(first)} ({ms(cpu)} CPU)", f"<= 30 ms: {met}"),
            versus("  cold, vs cheta-layout statistics", first, g(cheta, "first")),
            versus("  cold CPU", cpu, g(cheta, "first_cpu")),
            versus("  warm", g(mica), g(cheta)),
            versus("  warm CPU", g(mica, "cpu"), g(cheta, "cpu")),
        ]
    return rows


def mission_append_rows(fig: Figures, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Appending a day to the mission's header-3 store against its last period alone (the
    same chunks appended to, without the other periods: what the store's size adds, e.g.
    the mission table derived again) and an empty archive."""
    mission, last, empty = (fig.get(f"hd3 append {k}") for k in ("mission", "last period", "empty"))
    return [
        (
            f"append a day to the {args.years} y header-3 store",
            f"{mission:.3f} s CPU",
            f"{mission / last:.2f}x its last period alone (<= 1.2x)",
        ),
        ("  to its last period alone", f"{last:.3f} s CPU", ""),
        ("  to an empty archive", f"{empty:.3f} s CPU", f"mission {mission / empty:.2f}x"),
    ]


def report(fig: Figures, args: argparse.Namespace) -> None:
    g = fig.get
    if args.only == "stats":
        print_table("Statistics (figures: mica / cheta layout, best round)", stats_rows(fig, args))
        print_table("Mission scale appends (thinned, slots 6-7)", mission_append_rows(fig, args))
        return
    work = args.work
    counts = f"{_rows(work / 'small' / 'aca0')} / {_rows(work / 'grown' / 'aca0')} rows"
    flat = [("(small / grown: index rows)", counts, "")]
    for label in QUERIES + ["files_1d", "images_10min", "msid_1"]:
        a, b = g(f"small {label}"), g(f"grown {label}")
        flat.append((label, f"{ms(a)} / {ms(b)}", f"{b / a:.2f}x (<= 1.2x)"))
        cpu = g(f"small {label}", "cpu"), g(f"grown {label}", "cpu")
        if not np.isnan(cpu[0]):  # (the reads `_timed` times: their CPU time too)
            flat.append(("  CPU", f"{ms(cpu[0])} / {ms(cpu[1])}", f"{cpu[1] / cpu[0]:.2f}x"))
    empty = g("append empty")
    flat.append(("append 1 day: empty archive", f"{empty:.2f} s", ""))
    for label, what, target in (
        ("append prev", "  to the day before (1 day)", ""),
        ("append prev-grown", f"  to it + {args.rows} index rows", " (<= 1.2x)"),
        ("append small", f"  to {args.days - 1} days (chunks grown)", " (<= 1.2x)"),
    ):
        flat.append((what, f"{g(label):.2f} s", f"{g(label) / empty:.2f}x empty{target}"))
    cpus = [g(f"append {k}", "cpu") for k in ("empty", "prev", "prev-grown", "small")]
    flat.append(
        (
            "  CPU: empty / prev / prev-grown / small",
            " / ".join(f"{c:.2f}" for c in cpus) + " s",
            " / ".join(f"{c / cpus[0]:.2f}x" for c in cpus[1:]) + " (<= 1.2x)",
        )
    )
    slot_empty, slot_full = g("append slot empty", "cpu"), g("append slot period", "cpu")
    flat.append(("append a slot period's last day: empty", f"{slot_empty:.2f} s CPU", ""))
    flat.append(
        (
            "  to the period's other days",
            f"{slot_full:.2f} s CPU",
            f"{slot_full / slot_empty:.2f}x (<= 1.2x)",
        )
    )
    for label in ("check prev-grown", "check prev"):
        res = fig.best.get(label, {})
        flat.append(
            (
                f"mica check {label.split()[1]} ({res.get('files')} rows)",
                f"{g(label):.1f} s, {g(label, 'cpu'):.1f} s CPU",
                f"{g(label, 'rss') / 1e6:.0f} MB peak, {res.get('problems')} problems",
            )
        )
    hd3 = fig.best.get("hd3 period", {})
    days = HD3_DAYS.split(",")
    first = hd3.get(days[0], np.nan)
    flat.append((f"append a day to a header-3 period: day {days[0]}", f"{first:.2f} s CPU", ""))
    for day in days[1:]:
        cpu = hd3.get(day, np.nan)
        flat.append((f"  day {day}", f"{cpu:.2f} s CPU", f"{cpu / first:.2f}x (<= 1.2x)"))
    print_table("Flat in the archive's size (<= 15 s and 500 MB for check)", flat)
    if args.only == "flat":
        return

    reads = []
    ranges = (1 / 24, 1.0, min(19.0, args.days - 1), args.days - 1)
    for key in dict.fromkeys(f"{days:g}" for days in ranges):
        mica, cheta = f"mica msid {key}", f"cheta msid {key}"
        reads.append(versus(f"MSID ccd_temp_fine {key} d, warm", g(mica), g(cheta)))
        reads.append(versus("  first call", g(mica, "first"), g(cheta, "first")))
    mica, cheta = "mica msid mission", "cheta msid mission"
    reads.append(versus(f"MSID {args.years} y (thinned), warm", g(mica), g(cheta)))
    reads.append(versus("  warm, CPU", g(mica, "cpu"), g(cheta, "cpu")))
    reads.append(versus("  first call", g(mica, "first"), g(cheta, "first")))
    reads.append(versus("  first call, CPU", g(mica, "first_cpu"), g(cheta, "first_cpu")))
    reads.append((f"MSIDset of 3 items, {args.days - 1} d", ms(g("mica msidset")), "no peer"))
    for label in ("msid memory", "msid memory mission"):
        peak, out = g(label, "peak"), g(label, "returned")
        ratio = f"{peak / out:.2f}x returned (<= 1.5x)"
        reads.append((label, f"{peak / 1e6:.1f} / {out / 1e6:.1f} MB", ratio))
    reads += stats_rows(fig, args)
    # wall and CPU time (bench_reads.py gives CPU time): met when both are within the target,
    # as for the statistics' cold reads
    wall, cpu = g("small images_10min"), g("small images_10min", "cpu")
    met = "met" if max(wall, cpu) <= 0.010 else "MISSED"
    reads.append(("get_aca_images 10 min, warm", f"{ms(wall)} ({ms(cpu)} CPU)", f"<= 10 ms: {met}"))
    for days in (1.0, args.days - 1):
        a, b = g(f"slot {days:g}", "cpu"), g(f"slot {days:g}", "copy_cpu")
        raw = g(f"slot {days:g}", "bytes_cpu")
        ratio = f"{a / b:.1f}x one copy (<= 3x), {a / raw:.0f}x memcpy"
        reads.append((f"get_slot_data TIME,TEMPCCD {days:g} d, CPU", ms(a), ratio))
    print_table("Reads (figures: mica / cheta layout, best round)", reads)
    print_table("Mission scale appends (thinned, slots 6-7)", mission_append_rows(fig, args))


def _rows(root: Path, name: str = INDEX) -> int:
    conn = sqlite3.connect(root / name)
    try:
        return conn.execute("SELECT count(*) FROM archfiles").fetchone()[0]
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=100, help="of the simulated archive")
    parser.add_argument("--rows", type=int, default=1_800_000, help="of the grown index")
    parser.add_argument("--years", type=int, default=25, help="of the header-3 store")
    default_work = Path(tempfile.gettempdir()) / "mica-bench-scale"
    parser.add_argument("--work", type=Path, default=default_work)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only", choices=["flat", "stats"], default=None, help="these figures alone"
    )
    parser.add_argument("--child", default=None)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--arg", default="")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.root, args.arg)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    built = build(args)
    print_table(f"Built in {args.work}", built or [("everything reused", "", "")])
    fig = measure(args)
    kept = {key: {**res, **fig.firsts.get(key, {})} for key, res in fig.best.items()}
    (args.work / "bench_scale.json").write_text(json.dumps(kept, indent=1))
    report(fig, args)


if __name__ == "__main__":
    main()
