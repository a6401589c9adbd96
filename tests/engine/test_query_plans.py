"""Every query an update or a reader makes of an L0 index is served by an index of it, so its
cost does not grow with the archive (issue 28: 25 years are 1.8 million rows).

The queries are recorded as the real code runs them (an update resuming where the archive left
off, the readers of slot data, images, file lists and header-3 items, a store rebuild), on a
copy of the six-hour simulated archive. Each is then checked twice: its ``EXPLAIN QUERY PLAN``
searches an index (no ``SCAN`` of the files table, except one that stops at its first row),
and the SQLite virtual-machine steps it takes stay within 1.2x once the index holds ten times
more rows of other years (synthetic rows, `mica.sim.index_rows`).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mica.archive import aca_hdr3, aca_l0
from mica.engine.colstore import ColumnStore
from mica.engine.index import INDEX_NAME, ArchiveIndex, _GuardedCursor, engine_index_sql
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0
from mica.sim.index_rows import add_index_rows
from mica.time import to_secs
from tests.conftest import SIM_START, SIM_STOP

#: statements reading or changing rows of the files table
_FILES_SQL = re.compile(r"\b(FROM|UPDATE|INTO)\s+archfiles\b", re.IGNORECASE)


def _record(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple]]:
    """Every statement the package runs on an archive index from now on, with its
    parameters (each one still runs: this only writes it down)."""
    seen: list[tuple[str, tuple]] = []
    execute = _GuardedCursor.execute

    def recording(self: sqlite3.Cursor, sql: str, params: Any = ()) -> Any:
        if _FILES_SQL.search(sql):
            seen.append((sql, tuple(params)))
        return execute(self, sql, params)

    monkeypatch.setattr(_GuardedCursor, "execute", recording)
    return seen


@pytest.fixture(scope="module")
def recorded(sim_l0_archive, tmp_path_factory) -> tuple[Path, list[tuple[str, tuple]]]:
    """A copy of the six-hour archive and the distinct queries of its files table that an
    update, the readers and a store rebuild made of it."""
    root = tmp_path_factory.mktemp("plans") / "aca0"
    shutil.copytree(sim_l0_archive, root)
    t0, t1 = to_secs(SIM_START), to_secs(SIM_STOP)
    with pytest.MonkeyPatch.context() as mp:
        seen = _record(mp)
        # an update without a start (resume_time), ingesting the next two hours
        report = update_archive(L0, "sim", None, t1 + 7200, data_root=root)
        assert report.ok and report.ingested, report.summary()
        aca_l0.get_files(start=t0, stop=t1, data_root=root)
        aca_l0.get_slot_data(t0, t0 + 3600, 3, data_root=root)
        aca_l0.get_slot_data(t0, t0 + 3600, 3, data_root=root, use_store=False)
        aca_l0.get_aca_images(t0, t0 + 600, data_root=root)
        aca_hdr3.MSID("ccd_temp", t0, t1, data_root=root)
        # a range across a period of the header-3 samples (the period lookup: store_chunks)
        aca_hdr3.MSID("ccd_temp", t0 - 40 * 86400, t0 + 3600, data_root=root)
        aca_hdr3.MSIDset(["ccd_temp", "aca_temp"], t0, t0 + 3600, data_root=root)
        with ArchiveIndex(L0, root) as index:  # the partition queries of a store rebuild
            store = ColumnStore(L0, index)
            chunks = index.conn.execute("SELECT part FROM store_chunks").fetchall()
            store.plan_chunks(sorted(r[0] for r in chunks))
            index.resume_time()
    distinct = list(dict.fromkeys((sql, params) for sql, params in seen))
    return root, distinct


def _reads(recorded_queries: list[tuple[str, tuple]]) -> list[tuple[str, tuple]]:
    return [(s, p) for s, p in recorded_queries if s.lstrip().upper().startswith("SELECT")]


def _plan(conn: sqlite3.Connection, sql: str, params: tuple) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def test_the_readers_and_an_update_were_recorded(recorded):
    _, queries = recorded
    text = " ".join(sql for sql, _ in queries)
    for what in (
        "MAX(tstart)",  # resume_time
        "tstop > ?",  # the ingest's overlap query
        "filename = ?",  # a file's row
        "slot IN",  # the readers' file lists
        "filetime >= ? AND filetime < ?",  # a store partition's rows
    ):
        assert what in text, what


def test_every_query_searches_an_index(recorded):
    root, queries = recorded
    conn = sqlite3.connect(root / INDEX_NAME)
    try:
        for sql, params in queries:
            plan = _plan(conn, sql, params)
            scans = [step for step in plan if re.match(r"SCAN archfiles\b", step)]
            # a scan in index order that stops at its first row is one search
            first_only = re.search(r"\bLIMIT 1\s*$", sql) and not any("TEMP" in s for s in plan)
            assert not scans or first_only, (sql, plan)
            if _FILES_SQL.search(sql) and sql.lstrip().upper().startswith(("SELECT", "DELETE")):
                assert any("archfiles" in step for step in plan), (sql, plan)
    finally:
        conn.close()


def _steps(conn: sqlite3.Connection, sql: str, params: tuple) -> int:
    """SQLite virtual-machine instructions a query takes to return all its rows."""
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    conn.set_progress_handler(tick, 1)
    try:
        conn.execute(sql, params).fetchall()
    finally:
        conn.set_progress_handler(None, 1)
    return count[0]


def test_query_costs_stay_flat_with_ten_times_the_rows(recorded, tmp_path):
    root, queries = recorded
    reads = _reads(queries)
    small = sqlite3.connect(root / INDEX_NAME)
    try:
        rows = small.execute("SELECT count(*) FROM archfiles").fetchone()[0]
        before = [_steps(small, sql, params) for sql, params in reads]
    finally:
        small.close()
    grown = tmp_path / INDEX_NAME
    shutil.copy(root / INDEX_NAME, grown)
    big = sqlite3.connect(grown)
    try:
        # ten times the rows, in the years around the archive's day (2008-2011, 2013-2016),
        # none in its store periods (100 days for header 3): its partitions stay its own
        keep = (to_secs(SIM_START) - 200 * 86400, to_secs(SIM_STOP) + 200 * 86400)
        added = add_index_rows(big, 10 * rows, to_secs("2008:001"), to_secs("2016:001"), keep)
        assert added >= 10 * rows
        after = [_steps(big, sql, params) for sql, params in reads]
    finally:
        big.close()
    for (sql, _), a, b in zip(reads, before, after):
        assert b <= 1.2 * a + 20, (sql, a, b)


def test_a_writer_adds_the_missing_indexes_a_reader_works_without(recorded, tmp_path):
    """An archive of an earlier version, without the indexes: readers work on it as it is
    (nothing written); the next writer's open creates them."""
    root, _ = recorded
    old = tmp_path / "aca0"
    shutil.copytree(root, old)
    conn = sqlite3.connect(old / INDEX_NAME)
    dropped = ["idx_archfiles_slot_filetime", "idx_archfiles_slot_tstart"]
    for name in dropped:
        conn.execute(f"DROP INDEX {name}")
    conn.close()
    t0 = to_secs(SIM_START)

    def names(data_root: Path) -> list[str]:
        files = aca_l0.get_files(start=t0, stop=t0 + 3600, data_root=data_root)
        return [Path(f).name for f in files]

    assert names(old) == names(root)
    with ArchiveIndex.open_for_reading(L0, old) as index:
        assert index.resume_time() is not None
    conn = sqlite3.connect(old / INDEX_NAME)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert not set(dropped) & names  # a reader created nothing
    with ArchiveIndex(L0, old):
        pass
    conn = sqlite3.connect(old / INDEX_NAME)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    expected = {re.search(r"EXISTS (\w+)", sql).group(1) for sql in engine_index_sql(L0)}
    assert set(dropped) <= expected <= names


def test_resume_time_is_the_earliest_of_the_slots_latest_starts(recorded):
    root, _ = recorded
    with ArchiveIndex.open_for_reading(L0, root) as index:
        rows = index.query()
        latest = {}
        for row in rows:
            latest[row["slot"]] = max(latest.get(row["slot"], row["tstart"]), row["tstart"])
        assert index.resume_time() == min(latest.values())


def test_a_store_build_asks_for_the_columns_it_reads_through_an_index(recorded):
    """A chunk build's partition query (`ColumnStore._part_todo`, run by the rebuild
    recorded above) names only the columns a build reads of a row
    (`FileProduct.store_row_columns`, a sixth of a 100-day header-3 partition's every
    column, measured) and searches an index for the partition's rows."""
    root, queries = recorded
    columns = ", ".join(L0.store_row_columns)
    narrow = [(s, p) for s, p in queries if s.startswith(f"SELECT {columns} FROM archfiles")]
    assert narrow
    assert not [s for s, _ in queries if s.startswith("SELECT * FROM archfiles WHERE slot")]
    conn = sqlite3.connect(root / INDEX_NAME)
    try:
        for sql, params in narrow:
            plan = _plan(conn, sql, params)
            assert any(re.match(r"SEARCH archfiles USING (COVERING )?INDEX", s) for s in plan)
            assert not [s for s in plan if re.match(r"SCAN archfiles\b", s)], plan
    finally:
        conn.close()


def test_dirty_partitions_are_asked_by_key(tmp_path, monkeypatch):
    """A question about a few partitions' dirty marks (an update's about those it writes, a
    reader's about those it found no chunk of, the header-3 store's about its views') reads
    their rows alone, however many others are dirty (a header-3 store's full-view
    partitions, never built there): the whole list's answer, by a search of the key, in
    batches of what one query binds."""
    full = [f"{slot}/{k}" for slot in range(8) for k in range(200)]
    hd3 = [f"hd3/6/{k}" for k in range(20)] + [f"hd3s/{k}" for k in range(20)]
    asked = ["3/5", "hd3s/7", "9/9", "hd3/6/99", *full[::2]]  # (800 of full's: two batches)
    queries = []
    execute = _GuardedCursor.execute

    def recording(self: sqlite3.Cursor, sql: str, params: Any = ()) -> Any:
        if "dirty_parts" in sql:
            queries.append((sql, tuple(params)))
        return execute(self, sql, params)

    with ArchiveIndex(L0, tmp_path / "aca0") as index:
        with index.transaction():
            index.mark_dirty(full + hd3)
        monkeypatch.setattr("mica.engine.index._IN_LIST", 500)
        monkeypatch.setattr(_GuardedCursor, "execute", recording)
        assert sorted(index.dirty_parts(among=asked)) == sorted(set(asked) & set(full + hd3))
        assert sorted(index.dirty_parts(prefix="hd3")) == sorted(hd3)
        assert sorted(index.dirty_parts()) == sorted(full + hd3)
        monkeypatch.undo()
        plans = [_plan(index.conn, sql, params) for sql, params in queries[:3]]
    assert len(queries) == 4  # two batches, the prefix, everything
    assert all(plan == [plan[0]] and plan[0].startswith("SEARCH dirty_parts") for plan in plans)
